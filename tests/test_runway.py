"""The Runway adapter and the official `runwayml` SDK against simulator/runway.py over loopback HTTP."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import runwayml
from PIL import Image

from cutroom.assets import AssetKind, AssetSpec, InputRef, Operation
from cutroom.channels import Aspect
from cutroom.media import probe
from providers import runway, simulation
from providers.base import ErrorKind, JobState, PollSchedule, ProviderError, run_job
from providers.local.video import LocalAnimatic
from tests.test_local_video import make_keyframe

#: Jobs take ~2% of Runway's real time; polls may come every 0.1 s here (the adapter's own floor is 5 s).
FAST = {"latency_scale": 0.02, "latency_jitter": 0.0}
TEST_SCHEDULE = PollSchedule(expected_s=0.5, min_interval_s=0.1, max_interval_s=0.3, timeout_s=30)


@pytest.fixture
def sim(simulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    # Faults off first: the limits route sits under /runway, where the frame injects them.
    simulator.reset(**FAST)
    _limits(simulator, concurrency=2, daily_generations=None, credit_balance=100_000)
    monkeypatch.setenv(simulation.SIMULATOR_ENV, simulator.url)
    monkeypatch.delenv(runway.KEY_ENV, raising=False)
    yield simulator


def _limits(simulator: Any, **limits: Any) -> None:
    httpx.post(f"{simulator.url}/runway/_sim/limits", json=limits).raise_for_status()


def _api(simulator: Any, method: str | None = None, part: str = "/v1/") -> list[dict[str, Any]]:
    """The vendor API calls in the log (the simulator's own /_sim and /_media routes left out)."""
    return [
        r for r in simulator.requests() if part in r["path"] and (method is None or r["method"] == method)
    ]


def _video(tmp_path: Path, **changes: Any) -> AssetSpec:
    keyframe = make_keyframe(tmp_path / "key.png", (320, 180))
    fields: dict[str, Any] = {
        "kind": AssetKind.video,
        "provider": "runway",
        "model": "gen4_turbo",
        "prompt": "slow push in on a blue bottle",
        "aspect": Aspect.landscape,
        "width": 1280,
        "height": 720,
        "duration_s": 2.0,
        "seed": 7,
        "inputs": (InputRef(role="keyframe", uri=keyframe.as_uri(), sha256="x"),),
    }
    return AssetSpec(**{**fields, **changes})


def _image(**changes: Any) -> AssetSpec:
    fields: dict[str, Any] = {
        "kind": AssetKind.image,
        "provider": "runway",
        "model": "gen4_image",
        "prompt": "a blue bottle on sand",
        "aspect": Aspect.square,
        "width": 1080,
        "height": 1080,
    }
    return AssetSpec(**{**fields, **changes})


def _raises(call: Any, kind: ErrorKind) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        call()
    assert caught.value.kind is kind, caught.value
    return caught.value


def test_image_to_video_from_a_file_keyframe_end_to_end(sim: Any, tmp_path: Path) -> None:
    spec = _video(tmp_path)
    out = run_job(runway.RunwayVideo(), spec, schedule=TEST_SCHEDULE)
    assert out.mime == "video/mp4"
    assert out.cost_usd == pytest.approx(0.10)  # 2 s x 5 credits x $0.01
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(out.data)
    info = probe(clip)
    assert (info.width, info.height) == (1280, 720)
    assert info.duration_s == pytest.approx(2.0, abs=0.1)
    creates = _api(sim, "POST")
    assert len(creates) == 1
    call = creates[0]
    assert call["path"] == "/runway/v1/image_to_video"
    assert call["headers"]["x-runway-version"] == "2024-11-06"
    assert call["headers"]["authorization"] == "Bearer …"
    body = call["body"]
    assert body["promptImage"].startswith("data:image/png;base64,")
    assert {k: body[k] for k in ("model", "ratio", "duration", "seed", "promptText")} == {
        "model": "gen4_turbo",
        "ratio": "1280:720",
        "duration": 2,
        "seed": 7,
        "promptText": spec.prompt,
    }


def test_text_to_image_end_to_end(sim: Any) -> None:
    out = run_job(runway.RunwayImage(), _image(), schedule=TEST_SCHEDULE)
    assert out.mime == "image/png" and out.data.startswith(b"\x89PNG")
    assert (out.width, out.height) == (1080, 1080)
    assert out.cost_usd == runway.MODELS["gen4_image"].usd_per_image
    (create,) = _api(sim, "POST")
    assert create["path"] == "/runway/v1/text_to_image"
    assert create["body"] == {"model": "gen4_image", "promptText": "a blue bottle on sand", "ratio": "1080:1080",
                              "seed": 0}  # fmt: skip


def test_text_to_video_reports_progress_and_renders_the_ratio(sim: Any, tmp_path: Path) -> None:
    spec = _video(tmp_path, model="gen4.5", inputs=(), aspect=Aspect.vertical, width=None, height=None)
    generator = runway.RunwayVideo()
    job = generator.submit(spec)
    seen = []
    while not (status := generator.poll(job)).state.terminal:
        seen.append(status)
        time.sleep(0.1)
    assert status.state is JobState.SUCCEEDED
    running = [s.progress for s in seen if s.state is JobState.RUNNING]
    assert running and all(p is not None and 0 <= p <= 1 for p in running)
    (create,) = _api(sim, "POST")
    assert create["path"] == "/runway/v1/text_to_video"
    assert create["body"]["ratio"] == "720:1280" and "promptImage" not in create["body"]
    clip = tmp_path / "t2v.mp4"
    clip.write_bytes(generator.fetch(job).data)
    assert (probe(clip).width, probe(clip).height) == (720, 1280)


def test_default_schedule_never_polls_faster_than_5s(sim: Any) -> None:
    """The adapter's vendor schedule, with its sleeps shrunk 50x in real time: every wait is still >= 5 s."""
    generator = runway.RunwayImage(time_scale=1.0)  # the vendor's clock, not the sped-up simulator's
    assert generator.schedule.min_interval_s == 5.0
    assert all(card.min_poll_interval_s == 5.0 for card in runway.MODELS.values())
    sim.configure(latency_scale=0.05, latency_jitter=0.0)  # the simulated 10 s of gen4_image: 0.5 s here
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds / 50)

    run_job(generator, _image(), sleep=sleep)
    polls = _api(sim, "GET", "/v1/tasks/")
    assert slept and min(slept) >= 5.0
    assert len(polls) == len(slept)  # one look after every wait; none right after submit


def test_against_the_simulator_the_schedule_runs_on_its_clock(sim: Any) -> None:
    simulation._latency_scale.cache_clear()
    sim.configure(latency_scale=0.04)
    generator = runway.RunwayImage()  # CUTROOM_SIMULATOR_URL is set: the simulator's latency_scale applies
    assert generator.schedule.min_interval_s == pytest.approx(5.0 * 0.04)
    assert generator.schedule.expected_s == pytest.approx(
        runway.MODELS["gen4_image"].expected_latency_s * 0.04
    )
    simulation._latency_scale.cache_clear()


def test_polls_follow_the_schedule(sim: Any, tmp_path: Path) -> None:
    run_job(runway.RunwayVideo(), _video(tmp_path), schedule=TEST_SCHEDULE)
    (create,) = _api(sim, "POST")
    polls = _api(sim, "GET", "/v1/tasks/")
    gaps = [b["time"] - a["time"] for a, b in zip(polls, polls[1:], strict=False)]
    assert gaps and min(gaps) >= TEST_SCHEDULE.min_interval_s * 0.9
    # 30 s x 0.02 = 0.6 s of work: the first wait (0.4 s) plus steps of 0.1-0.3 s, so a handful of polls.
    assert 2 <= len(polls) <= 2 + 0.6 / TEST_SCHEDULE.min_interval_s
    assert polls[0]["time"] >= create["time"]


def test_throttled_counts_as_pending_and_completes(sim: Any, tmp_path: Path) -> None:
    _limits(sim, concurrency=1)
    generator = runway.RunwayVideo()
    spec = _video(tmp_path)
    first, second = generator.submit(spec), generator.submit(spec)
    client = runway.make_client()
    assert client.tasks.retrieve(second.job_id).status == "THROTTLED"
    assert generator.poll(second).state is JobState.PENDING
    for job in (first, second):
        deadline = time.monotonic() + 10
        while (state := generator.poll(job).state) is not JobState.SUCCEEDED and time.monotonic() < deadline:
            time.sleep(0.1)
        assert state is JobState.SUCCEEDED
    assert generator.fetch(second).mime == "video/mp4"


def test_throttled_fault_sits_throttled_then_completes(sim: Any) -> None:
    sim.configure(fault_rate=1.0, faults=["throttled"])
    generator = runway.RunwayImage()
    job = generator.submit(_image())
    assert runway.make_client().tasks.retrieve(job.job_id).status == "THROTTLED"
    assert generator.poll(job).state is JobState.PENDING
    sim.configure(fault_rate=0.0, faults=[], **FAST)
    assert _wait(generator, job) is JobState.SUCCEEDED


def _wait(generator: Any, job: Any, limit_s: float = 10) -> JobState:
    deadline = time.monotonic() + limit_s
    while not (state := generator.poll(job).state).terminal and time.monotonic() < deadline:
        time.sleep(0.1)
    return state


def test_missing_version_header_is_rejected_with_runways_error_shape(sim: Any) -> None:
    auth = {"Authorization": f"Bearer {runway.SIMULATOR_KEY}"}
    response = httpx.post(f"{sim.url}/runway/v1/text_to_image", json={"model": "gen4_image"}, headers=auth)
    assert response.status_code == 400
    assert set(response.json()) >= {"error"} and "X-Runway-Version" in response.json()["error"]
    response = httpx.get(f"{sim.url}/runway/v1/organization", headers={"X-Runway-Version": "2024-11-06"})
    assert response.status_code == 401 and "error" in response.json()


def test_invalid_ratio_is_a_validation_error_at_the_simulator(sim: Any) -> None:
    client = runway.make_client().with_options(max_retries=0)
    with pytest.raises(runwayml.BadRequestError) as caught:
        client.text_to_image.create(model="gen4_image", prompt_text="x", ratio="1000:1000")  # type: ignore[arg-type]
    body = caught.value.body
    assert isinstance(body, dict) and body["error"] == "Validation of body failed"
    assert body["issues"][0]["path"] == ["ratio"] and body["issues"][0]["code"] == "invalid_value"
    assert runway.map_error(caught.value).kind is ErrorKind.invalid_input


@pytest.mark.parametrize(
    ("generator", "spec_changes"),
    [
        (runway.RunwayVideo, {"width": 1000, "height": 700}),  # no gen4_turbo ratio has this shape
        (runway.RunwayVideo, {"model": "veo3.1", "aspect": Aspect.square, "width": None, "height": None}),
        (runway.RunwayVideo, {"duration_s": 12.0}),
        (runway.RunwayVideo, {"inputs": ()}),  # gen4_turbo is image-to-video only
        (runway.RunwayVideo, {"resolution": "4k"}),  # not one of gen4_turbo's ratios
        (
            runway.RunwayVideo,
            {"model": "gen4.5", "inputs": (), "resolution": "1104:832"},
        ),  # image_to_video only
        (runway.RunwayVideo, {"strength": "flex_1"}),
    ],
)
def test_the_adapter_refuses_bad_specs_before_any_request(
    sim: Any, tmp_path: Path, generator: Any, spec_changes: dict[str, Any]
) -> None:
    _raises(lambda: generator().submit(_video(tmp_path, **spec_changes)), ErrorKind.invalid_input)
    assert _api(sim) == []


def _big_keyframe(tmp_path: Path) -> AssetSpec:
    """A video spec whose keyframe is too big for a data URI."""
    big = tmp_path / "big.png"
    noise = np.random.default_rng(0).integers(0, 256, (1100, 1300, 3), dtype=np.uint8)
    Image.fromarray(noise).save(big, compress_level=0)
    assert 4 * big.stat().st_size / 3 > runway.DATA_URI_LIMIT
    return _video(tmp_path, inputs=(InputRef(role="keyframe", uri=big.as_uri(), sha256="x"),))


def test_a_keyframe_over_5mb_goes_up_through_uploads_as_a_runway_uri(sim: Any, tmp_path: Path) -> None:
    spec = _big_keyframe(tmp_path)
    out = run_job(runway.RunwayVideo(), spec, schedule=TEST_SCHEDULE)
    start, send, create = [r for r in sim.requests() if r["method"] == "POST" and "/_sim/" not in r["path"]]
    assert (start["path"], start["body"]) == (
        "/runway/v1/uploads",
        {"filename": "big.png", "type": "ephemeral"},
    )
    assert send["path"].startswith("/runway/_uploads/") and send["status"] == 204
    upload_id = send["path"].rsplit("/", 1)[1]
    assert (
        create["path"] == "/runway/v1/image_to_video"
        and create["body"]["promptImage"] == f"runway://{upload_id}"
    )
    assert out.mime == "video/mp4"


def test_a_resubmit_after_a_429_reuses_the_upload(sim: Any, tmp_path: Path) -> None:
    """run_job sends a create refused with 429 again; the keyframe it uploaded for it is not uploaded twice."""
    _limits(sim, daily_generations=0)  # Runway's 429 for an exhausted daily quota
    lifted: list[float] = []

    def sleep(seconds: float) -> None:
        if not lifted:
            _limits(sim, daily_generations=None)
        lifted.append(seconds)
        time.sleep(seconds)

    out = run_job(runway.RunwayVideo(), _big_keyframe(tmp_path), schedule=TEST_SCHEDULE, sleep=sleep)
    assert out.mime == "video/mp4"
    (upload,) = _api(sim, "POST", "/v1/uploads")
    first, second = _api(sim, "POST", "/v1/image_to_video")
    assert (first["status"], second["status"]) == (429, 200)
    assert first["body"]["promptImage"] == second["body"]["promptImage"]
    assert first["body"]["promptImage"].startswith("runway://")


def test_an_upload_is_made_again_once_its_reuse_window_has_passed(
    sim: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runway, "UPLOAD_REUSE_S", 0.0)  # ephemeral uploads expire; never reuse an old one
    generator, spec = runway.RunwayVideo(), _big_keyframe(tmp_path)
    for _ in range(2):
        generator.cancel(generator.submit(spec))
    assert len(_api(sim, "POST", "/v1/uploads")) == 2
    first, second = _api(sim, "POST", "/v1/image_to_video")
    assert first["body"]["promptImage"] != second["body"]["promptImage"]


def test_an_unknown_runway_uri_is_a_validation_error(sim: Any) -> None:
    client = runway.make_client().with_options(max_retries=0)
    with pytest.raises(runwayml.BadRequestError) as caught:
        client.image_to_video.create(model="gen4_turbo", prompt_image="runway://nope", ratio="1280:720")
    assert caught.value.body["issues"][0]["path"] == ["promptImage"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("fault", "kind", "sdk_error"),
    [
        ("429", ErrorKind.rate_limited, runwayml.RateLimitError),
        ("5xx", ErrorKind.generation_failed, runwayml.InternalServerError),
        ("timeout", ErrorKind.generation_failed, runwayml.APITimeoutError),
        ("reset", ErrorKind.generation_failed, runwayml.APIConnectionError),
        ("malformed", ErrorKind.generation_failed, ValueError),  # the SDK lets json's error through
    ],
)
def test_transport_faults_on_create_map_and_never_resend(
    sim: Any, fault: str, kind: ErrorKind, sdk_error: type[Exception]
) -> None:
    sim.configure(fault_rate=1.0, faults=[fault], retry_after_s=7, timeout_s=1.0)
    generator = runway.RunwayImage(client=runway.make_client(timeout=0.3))
    error = _raises(lambda: generator.submit(_image()), kind)
    assert error.kind.transient and isinstance(error.__cause__, sdk_error)
    assert len(_api(sim, "POST")) == 1  # the SDK's 2 retries are off for creates: no duplicate paid job
    if fault == "429":
        assert error.retry_after == 7


def test_a_rate_limited_poll_is_retried_by_the_sdk_then_mapped(sim: Any) -> None:
    """Polls are idempotent, so the SDK's 2 retries stay on for them (honouring Retry-After)."""
    generator = runway.RunwayImage()
    job = generator.submit(_image())
    sim.configure(fault_rate=1.0, faults=["429"], retry_after_s=0.1)
    error = _raises(lambda: generator.poll(job), ErrorKind.rate_limited)
    assert error.retry_after == pytest.approx(0.1)
    assert len(_api(sim, "GET", "/v1/tasks/")) == 3


def test_the_sdk_default_would_resend_a_create_on_5xx(sim: Any) -> None:
    """Why creates go out with max_retries=0: the stock client sends the same paid POST three times."""
    sim.configure(fault_rate=1.0, faults=["5xx"])
    client = runwayml.RunwayML(api_key=runway.SIMULATOR_KEY, base_url=f"{sim.url}/runway")
    with pytest.raises(runwayml.InternalServerError):
        client.text_to_image.create(model="gen4_image", prompt_text="x", ratio="1080:1080")
    assert len(_api(sim, "POST")) == 3


@pytest.mark.parametrize(
    ("fault", "kind", "codes"),
    [
        ("failed", ErrorKind.generation_failed, {"INTERNAL"}),
        ("moderation", ErrorKind.moderation_input, {"SAFETY.INPUT.TEXT", "SAFETY.INPUT.IMAGE"}),
        ("moderation", ErrorKind.moderation_output, {"SAFETY.OUTPUT.IMAGE"}),
    ],
)
def test_failed_tasks_carry_the_failure_codes_kind(
    sim: Any, fault: str, kind: ErrorKind, codes: set[str]
) -> None:
    sim.configure(fault_rate=1.0, faults=[fault])
    generator = runway.RunwayImage()
    for seed in range(20):  # moderation is drawn input or output: find a task of the wanted side
        try:
            run_job(generator, _image(seed=seed), schedule=TEST_SCHEDULE)
        except ProviderError as exc:
            if exc.kind is kind:
                assert exc.kind.transient is (kind is ErrorKind.generation_failed)
                assert str(exc).split(": ")[2] in codes
                return
    pytest.fail(f"no {kind} failure in 20 tasks")


def test_failure_code_mapping() -> None:
    assert runway.failure_kind("SAFETY.INPUT.TEXT") is ErrorKind.moderation_input
    assert runway.failure_kind("INPUT_PREPROCESSING.SAFETY.TEXT") is ErrorKind.moderation_input
    assert runway.failure_kind("SAFETY.OUTPUT.VIDEO") is ErrorKind.moderation_output
    assert runway.failure_kind("INTERNAL.BAD_OUTPUT.CODE01") is ErrorKind.generation_failed
    assert runway.failure_kind("ASSET.INVALID") is ErrorKind.invalid_input
    assert runway.failure_kind(None) is ErrorKind.generation_failed


def test_an_expired_output_url_is_not_found(sim: Any) -> None:
    sim.configure(fault_rate=1.0, faults=["expired"])
    error = _raises(
        lambda: run_job(runway.RunwayImage(), _image(), schedule=TEST_SCHEDULE), ErrorKind.not_found
    )
    assert "expired" in str(error) and not error.kind.transient
    assert _api(sim, "GET", "/_media/")[-1]["status"] == 403


def test_an_output_url_expires_after_the_ttl(sim: Any) -> None:
    sim.configure(output_ttl_s=0.2)
    generator = runway.RunwayImage()
    job = generator.submit(_image())
    assert _wait(generator, job) is JobState.SUCCEEDED
    time.sleep(0.3)
    assert "expired" in str(_raises(lambda: generator.fetch(job), ErrorKind.not_found))


def test_out_of_credits_and_daily_quota(sim: Any) -> None:
    _limits(sim, credit_balance=3)
    _raises(lambda: runway.RunwayImage().submit(_image()), ErrorKind.insufficient_credits)
    _limits(sim, credit_balance=100, daily_generations=0)
    assert _raises(lambda: runway.RunwayImage().submit(_image()), ErrorKind.rate_limited).kind.transient
    assert len(_api(sim, "POST")) == 2


def test_cancel_and_organization(sim: Any, tmp_path: Path) -> None:
    generator = runway.RunwayVideo()
    job = generator.submit(_video(tmp_path))
    generator.cancel(job)
    assert generator.poll(job).state is JobState.CANCELLED
    assert _api(sim, "DELETE")[0]["path"] == f"/runway/v1/tasks/{job.job_id}"
    org = generator.organization()
    assert org.credit_balance == 100_000 - 10 and org.usage.models["gen4_turbo"].daily_generations == 1
    assert org.tier.models["gen4_turbo"].max_concurrent_generations == 2


def test_bad_key_is_auth_and_missing_key_is_not_configured(sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = runwayml.RunwayML(api_key="key_nope", base_url=f"{sim.url}/runway")
    assert not _raises(lambda: runway.RunwayImage(client=bad).submit(_image()), ErrorKind.auth).kind.transient
    monkeypatch.delenv(simulation.SIMULATOR_ENV)
    _raises(lambda: runway.RunwayImage().submit(_image()), ErrorKind.not_configured)
    assert len(_api(sim)) == 1


def test_a_poll_that_fails_transiently_is_repeated_never_resubmitted(sim: Any) -> None:
    """Every poll of one wait answers 503 (the SDK's own read retries included); run_job waits and looks again."""
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        # The first wait turns 5xx faults on for the next poll, the pause after it turns them off again.
        sim.configure(faults=["5xx"], fault_rate=1.0 if not waits else 0.0)
        waits.append(seconds)
        time.sleep(seconds)

    out = run_job(runway.RunwayImage(), _image(), schedule=TEST_SCHEDULE, sleep=sleep)
    assert out.mime == "image/png"
    assert len(_api(sim, "POST")) == 1
    polls = _api(sim, "GET", part="/v1/tasks/")
    assert [p["status"] for p in polls[:3]] == [503, 503, 503] and polls[-1]["status"] == 200


def test_a_rate_limited_create_is_waited_out_and_sent_again(sim: Any) -> None:
    """A 429 means Runway took nothing: run_job resubmits after Retry-After, and exactly one task is made."""
    sim.configure(faults=["429"], fault_rate=1.0, retry_after_s=0.3)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            sim.configure(fault_rate=0.0)  # the vendor lets us through on the third try
        time.sleep(seconds)

    out = run_job(runway.RunwayImage(), _image(), schedule=TEST_SCHEDULE, sleep=sleep)
    assert out.mime == "image/png"
    creates = _api(sim, "POST")
    assert [c["status"] for c in creates] == [429, 429, 200]
    assert waits[:2] == [0.3, 0.3]


def _source_clip(tmp_path: Path, size: tuple[int, int] = (320, 180), duration_s: float = 2.0) -> Path:
    """A small real H.264 clip to modify or upscale."""
    keyframe = make_keyframe(tmp_path / "source-key.png", size)
    clip = LocalAnimatic().render(
        AssetSpec(
            kind=AssetKind.video, provider="local", model="animatic-1", prompt="source", width=size[0],
            height=size[1], duration_s=duration_s, fps=12,
            inputs=(InputRef(role="keyframe", uri=keyframe.as_uri(), sha256="x"),),
        )
    )  # fmt: skip
    path = tmp_path / "source.mp4"
    path.write_bytes(clip.data)
    return path


def _operation(tmp_path: Path, operation: Operation, **changes: Any) -> AssetSpec:
    model = runway.OPERATIONS[operation][0]
    source = InputRef(role="source", uri=_source_clip(tmp_path).as_uri(), sha256="x")
    return _video(tmp_path, model=model, operation=operation, inputs=(source,), **changes)


def test_modify_end_to_end_sends_aleph2_to_video_to_video(sim: Any, tmp_path: Path) -> None:
    spec = _operation(tmp_path, Operation.modify, prompt="make it a watercolour")
    out = run_job(runway.RunwayVideo(), spec, schedule=TEST_SCHEDULE)
    (create,) = _api(sim, "POST")
    assert create["path"] == "/runway/v1/video_to_video"
    body = create["body"]
    assert body.pop("videoUri").startswith("data:video/mp4;base64,")
    assert body == {"model": "aleph2", "promptText": "make it a watercolour", "ratio": "1280:720", "seed": 7}
    assert out.mime == "video/mp4" and out.cost_usd == pytest.approx(2 * 0.15)
    clip = tmp_path / "modified.mp4"
    clip.write_bytes(out.data)
    info = probe(clip)
    assert (info.width, info.height) == (1280, 720)
    assert info.duration_s == pytest.approx(2.0, abs=0.2)


def test_upscale_end_to_end_makes_magnifics_2k_default(sim: Any, tmp_path: Path) -> None:
    spec = _operation(tmp_path, Operation.upscale, width=None, height=None, aspect=None)
    out = run_job(runway.RunwayVideo(), spec, schedule=TEST_SCHEDULE)
    (create,) = _api(sim, "POST")
    assert create["path"] == "/runway/v1/video_upscale"
    body = create["body"]
    assert body.pop("videoUri").startswith("data:video/mp4;base64,")
    assert body == {"model": "magnific_video_upscaler_creative"}
    clip = tmp_path / "upscaled.mp4"
    clip.write_bytes(out.data)
    info = probe(clip)
    assert (info.width, info.height) == (2560, 1440)  # 2k from the 320x180 source, its shape kept
    assert out.cost_usd == pytest.approx(2 * 0.02)
    task = runway.make_client().tasks.retrieve(_api(sim, "GET", "/v1/tasks/")[-1]["path"].rsplit("/", 1)[1])
    assert task.status == "SUCCEEDED" and task.cost.credits == 4  # 2 s of source x 2 credits


def test_a_public_url_is_sent_as_the_video_uri(sim: Any, tmp_path: Path) -> None:
    url = "https://cdn.example.com/clips/source.mp4"
    spec = _operation(tmp_path, Operation.upscale)
    spec = spec.model_copy(update={"inputs": (spec.inputs[0].model_copy(update={"url": url}),)})
    generator = runway.RunwayVideo()
    generator.cancel(generator.submit(spec))
    (create,) = _api(sim, "POST")
    assert create["body"] == {"model": "magnific_video_upscaler_creative", "videoUri": url}


@pytest.mark.parametrize(
    ("endpoint", "body", "path", "code"),
    [
        ("video_to_video", {"model": "aleph2", "videoUri": "https://x.com/a.mp4", "ratio": "1000:700"},
         ["ratio"], "invalid_value"),
        ("video_to_video", {"model": "aleph2", "promptText": "x"}, ["videoUri"], "invalid_type"),
        ("video_to_video", {"model": "aleph2", "videoUri": "data:video/mp4;base64," + "A" * 5_300_000},
         ["videoUri"], "too_big"),
        ("video_upscale", {"model": "magnific_video_upscaler_creative", "videoUri": "http://x.com/a.mp4"},
         ["videoUri"], "custom"),
        ("video_upscale", {"model": "magnific_video_upscaler_creative", "videoUri": "https://x.com/a.mp4",
                           "resolution": "8k"}, ["resolution"], "invalid_value"),
        ("video_upscale", {"model": "enhance_frame_rate", "videoUri": "https://x.com/a.mp4"},
         ["targetFramerate"], "invalid_type"),
        ("video_upscale", {"model": "enhance_frame_rate", "videoUri": "https://x.com/a.mp4", "targetFramerate": "61"},
         ["targetFramerate"], "invalid_value"),
    ],
)  # fmt: skip
def test_the_simulator_rejects_bad_operation_bodies_like_runway(
    sim: Any, endpoint: str, body: dict[str, Any], path: list[Any], code: str
) -> None:
    client = runway.make_client().with_options(max_retries=0)
    with pytest.raises(runwayml.BadRequestError) as caught:
        client.post(f"/v1/{endpoint}", body=body, cast_to=object)
    error = caught.value.body
    assert isinstance(error, dict) and error["error"] == "Validation of body failed"
    assert [(i["path"], i["code"]) for i in error["issues"]] == [(path, code)]
    assert runway.map_error(caught.value).kind is ErrorKind.invalid_input


def test_a_source_longer_than_30s_is_rejected_on_video_uri(sim: Any, tmp_path: Path) -> None:
    long = _source_clip(tmp_path, (64, 36), duration_s=31.0)
    uri = runway.video_uri(InputRef(role="source", uri=long.as_uri(), sha256="x"))
    with pytest.raises(runwayml.BadRequestError) as caught:
        runway.make_client().with_options(max_retries=0).video_upscale.create(
            model="magnific_video_upscaler_creative", video_uri=uri
        )
    assert caught.value.body["issues"][0]["path"] == ["videoUri"]  # type: ignore[index]
    assert "30 seconds" in str(runway.map_error(caught.value))


def _big_source(tmp_path: Path) -> InputRef:
    big = tmp_path / "big.mp4"
    big.write_bytes(bytes(4 * 1024 * 1024))
    return InputRef(role="source", uri=big.as_uri(), sha256="x")


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda s, p: s.model_copy(update={"width": 1000, "height": 700}), "no ratio"),  # the sim's ratio 400
        (lambda s, p: s.model_copy(update={"inputs": ()}), "role 'source'"),  # the sim's missing videoUri
        (lambda s, p: s.model_copy(update={"inputs": (_big_source(p),)}), "public URL"),  # the sim's too_big
        (lambda s, p: s.model_copy(update={"inputs": (*s.inputs, InputRef(role="reference", uri="https://a.b/c.png",
                                                                          sha256="x"))}), "reference"),
        (lambda s, p: s.model_copy(update={"operation": Operation.reframe}), "cannot reframe"),
        (lambda s, p: s.model_copy(update={"operation": Operation.add_audio}), "cannot add_audio"),
        (lambda s, p: s.model_copy(update={"model": "gen4_turbo"}), "with aleph2"),
        (lambda s, p: s.model_copy(update={"operation": None}), "needs operation modify"),
        (lambda s, p: s.model_copy(update={"operation": Operation.upscale}), "magnific_video_upscaler_creative"),
    ],
)  # fmt: skip
def test_the_adapter_refuses_bad_operation_specs_before_any_request(
    sim: Any, tmp_path: Path, make: Any, needle: str
) -> None:
    spec = make(_operation(tmp_path, Operation.modify), tmp_path)
    assert needle in str(_raises(lambda: runway.RunwayVideo().submit(spec), ErrorKind.invalid_input))
    assert _api(sim) == []


def test_an_operation_on_an_image_model_is_refused_before_any_request(sim: Any) -> None:
    error = _raises(
        lambda: runway.RunwayImage().submit(_image(operation=Operation.upscale)), ErrorKind.invalid_input
    )
    assert "image cannot upscale" in str(error)
    assert _api(sim) == []


def test_upscale_to_a_chosen_resolution(sim: Any, tmp_path: Path) -> None:
    spec = _operation(tmp_path, Operation.upscale, width=None, height=None, aspect=None, resolution="720p")
    out = run_job(runway.RunwayVideo(), spec, schedule=TEST_SCHEDULE)
    (create,) = _api(sim, "POST")
    body = create["body"]
    assert body.pop("videoUri").startswith("data:video/mp4;base64,")
    assert body == {"model": "magnific_video_upscaler_creative", "resolution": "720p"}
    (clip := tmp_path / "720p.mp4").write_bytes(out.data)
    assert (probe(clip).width, probe(clip).height) == (1280, 720)


def test_enhance_frame_rate_end_to_end_retimes_the_source(sim: Any, tmp_path: Path) -> None:
    spec = _operation(tmp_path, Operation.enhance_frame_rate, fps=60)
    out = run_job(runway.RunwayVideo(), spec, schedule=TEST_SCHEDULE)
    (create,) = _api(sim, "POST")
    assert create["path"] == "/runway/v1/video_upscale"
    body = create["body"]
    assert body.pop("videoUri").startswith("data:video/mp4;base64,")
    assert body == {"model": "enhance_frame_rate", "targetFramerate": "60"}
    (clip := tmp_path / "60fps.mp4").write_bytes(out.data)
    source, result = probe(tmp_path / "source.mp4"), probe(clip)
    assert (source.fps, result.fps) == (12, 60)
    assert (result.width, result.height) == (source.width, source.height)
    assert result.duration_s == pytest.approx(source.duration_s, abs=0.2)
    assert out.cost_usd == pytest.approx(2 * runway.MODELS["enhance_frame_rate"].usd_per_second)


@pytest.mark.parametrize(
    ("operation", "make", "needle"),
    [
        (Operation.enhance_frame_rate, lambda s: s, "needs spec.fps"),
        (Operation.enhance_frame_rate, lambda s: s.model_copy(update={"fps": 23}),
         "23 fps (allowed: 24, 25, 30, 48, 50, 60, 120)"),
        (Operation.enhance_frame_rate, lambda s: s.model_copy(update={"fps": 60, "resolution": "2k"}),
         "resolution 2k (allowed: none)"),
        (Operation.upscale, lambda s: s.model_copy(update={"resolution": "8k"}),
         "resolution 8k (allowed: 720p, 1k, 2k, 4k)"),
        (Operation.upscale, lambda s: s.model_copy(update={"strength": 0.5}), "takes no strength"),
        (Operation.upscale, lambda s: s.model_copy(update={"inputs": (*s.inputs, InputRef(
            role="style_reference", uri="https://a.b/c.png", sha256="x"))}), "takes only the source video"),
    ],
)  # fmt: skip
def test_the_adapter_refuses_bad_upscale_and_frame_rate_specs_before_any_request(
    sim: Any, tmp_path: Path, operation: Operation, make: Any, needle: str
) -> None:
    spec = make(_operation(tmp_path, operation))
    assert needle in str(_raises(lambda: runway.RunwayVideo().submit(spec), ErrorKind.invalid_input))
    assert _api(sim) == []


def test_style_and_character_references_go_out_as_reference_images(sim: Any, tmp_path: Path) -> None:
    face = make_keyframe(tmp_path / "face.png", (64, 64))
    refs = (
        InputRef(role="style_reference", uri="https://cdn.example.com/style.png", sha256="x"),
        InputRef(role="character_reference", uri=face.as_uri(), sha256="x"),
    )
    spec = _image(inputs=refs, resolution="1360:768", aspect=None, width=None, height=None)
    out = run_job(runway.RunwayImage(), spec, schedule=TEST_SCHEDULE)
    assert Image.open(io.BytesIO(out.data)).size == (out.width, out.height) == (1360, 768)
    (create,) = _api(sim, "POST")
    body = create["body"]
    assert body["ratio"] == "1360:768"
    style, character = body["referenceImages"]
    assert style == {"uri": "https://cdn.example.com/style.png"}
    assert character["uri"].startswith("data:image/png;base64,")

    too_many = _image(inputs=refs * 2)
    assert "up to 3" in str(_raises(lambda: runway.RunwayImage().submit(too_many), ErrorKind.invalid_input))
    assert len(_api(sim, "POST")) == 1
