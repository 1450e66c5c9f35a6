"""The Runway adapter and the official `runwayml` SDK against simulator/runway.py over loopback HTTP."""

from __future__ import annotations

import base64
import io
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_type_hints

import httpx
import numpy as np
import pytest
import runwayml
from PIL import Image
from runwayml.types import (
    image_to_video_create_params,
    text_to_image_create_params,
    text_to_video_create_params,
)
from runwayml.types.video_upscale_create_params import EnhanceFrameRate, MagnificVideoUpscalerCreative

from cutroom.assets import AssetKind, AssetSpec, InputRef, Operation
from cutroom.capabilities import Capability
from cutroom.channels import Aspect
from cutroom.media import probe
from providers import declarations, runway, simulation
from providers.errors import ErrorKind, JobFailed
from providers.local.video import LocalAnimatic
from providers.polling import PollSchedule, run_job
from providers.protocol import JobState
from tests.test_local_video import make_keyframe
from tests.vendor_helpers import literals, on_simulator, refused

#: Jobs take ~2% of Runway's real time; polls may come every 0.1 s here (the adapter's own floor is 5 s).
FAST = {"latency_scale": 0.02, "latency_jitter": 0.0}
TEST_SCHEDULE = PollSchedule(expected_s=0.5, min_interval_s=0.1, max_interval_s=0.3, timeout_s=30)
RUNWAY = declarations.vendor("runway")
KEY = RUNWAY.simulator.key  # type: ignore[union-attr]


@pytest.fixture
def sim(simulator: Any) -> Iterator[Any]:
    # Faults off first: the limits route sits under /runway, where the frame injects them.
    simulator.reset(**FAST)
    _limits(simulator, concurrency=2, daily_generations=None, credit_balance=100_000)
    yield simulator


def _url(simulator: Any) -> str:
    return f"{simulator.url}{RUNWAY.simulator.prefix}"  # type: ignore[union-attr]


def video(simulator: Any, model: str | None = None, **options: Any) -> runway.RunwayVideo:
    return on_simulator(runway.RunwayVideo, simulator, model, scale=FAST["latency_scale"], **options)


def image(simulator: Any, model: str | None = None, **options: Any) -> runway.RunwayImage:
    return on_simulator(runway.RunwayImage, simulator, model, scale=FAST["latency_scale"], **options)


def _client(simulator: Any, **options: Any) -> runwayml.RunwayML:
    """The stock SDK client, creates not retried, for what the adapter would never send."""
    return runwayml.RunwayML(api_key=KEY, base_url=_url(simulator), max_retries=0, **options)


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


def test_image_to_video_from_a_file_keyframe_end_to_end(sim: Any, tmp_path: Path) -> None:
    spec = _video(tmp_path)
    out = run_job(video(sim), spec, schedule=TEST_SCHEDULE)
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
    out = run_job(image(sim), _image(), schedule=TEST_SCHEDULE)
    assert out.mime == "image/png" and out.data.startswith(b"\x89PNG")
    assert (out.width, out.height) == (1080, 1080)
    assert out.cost_usd == RUNWAY.card("gen4_image").price.usd
    (create,) = _api(sim, "POST")
    assert create["path"] == "/runway/v1/text_to_image"
    assert create["body"] == {"model": "gen4_image", "promptText": "a blue bottle on sand", "ratio": "1080:1080",
                              "seed": 0}  # fmt: skip


def test_text_to_video_reports_progress_and_renders_the_ratio(sim: Any, tmp_path: Path) -> None:
    spec = _video(tmp_path, model="gen4.5", inputs=(), aspect=Aspect.vertical, width=None, height=None)
    generator = video(sim)
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
    generator = image(sim, time_scale=1.0)  # the vendor's clock, not the sped-up simulator's
    assert generator.schedule.min_interval_s == 5.0
    assert all(card.min_poll_interval_s == 5.0 for card in RUNWAY.models)
    sim.configure(latency_scale=0.05, latency_jitter=0.0)  # the simulated 10 s of gen4_image: 0.5 s here
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds / 50)

    run_job(generator, _image(), sleep=sleep)
    polls = _api(sim, "GET", "/v1/tasks/")
    assert slept and min(slept) >= 5.0
    assert len(polls) == len(slept)  # one look after every wait; none right after submit


def test_against_the_simulator_the_schedule_runs_on_its_clock(
    sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CUTROOM_SIMULATOR_URL alone sends an adapter to the simulator, with its dummy key and on its clock."""
    monkeypatch.setenv(simulation.SIMULATOR_ENV, sim.url)
    monkeypatch.delenv(RUNWAY.keys[0], raising=False)
    simulation._latency_scale.cache_clear()
    sim.configure(latency_scale=0.04)
    generator = runway.RunwayImage()
    assert generator.schedule.min_interval_s == pytest.approx(5.0 * 0.04)
    assert generator.schedule.expected_s == pytest.approx(RUNWAY.card("gen4_image").expected_latency_s * 0.04)
    simulation._latency_scale.cache_clear()
    job = generator.submit(_image())
    assert _wait(generator, job) is JobState.SUCCEEDED
    (create,) = _api(sim, "POST")
    assert create["path"] == "/runway/v1/text_to_image" and create["status"] == 200


def test_polls_follow_the_schedule(sim: Any, tmp_path: Path) -> None:
    run_job(video(sim), _video(tmp_path), schedule=TEST_SCHEDULE)
    (create,) = _api(sim, "POST")
    polls = _api(sim, "GET", "/v1/tasks/")
    gaps = [b["time"] - a["time"] for a, b in zip(polls, polls[1:], strict=False)]
    assert gaps and min(gaps) >= TEST_SCHEDULE.min_interval_s * 0.9
    # 30 s x 0.02 = 0.6 s of work: the first wait (0.4 s) plus steps of 0.1-0.3 s, so a handful of polls.
    assert 2 <= len(polls) <= 2 + 0.6 / TEST_SCHEDULE.min_interval_s
    assert polls[0]["time"] >= create["time"]


def test_throttled_counts_as_pending_and_completes(sim: Any, tmp_path: Path) -> None:
    _limits(sim, concurrency=1)
    generator = video(sim)
    spec = _video(tmp_path)
    first, second = generator.submit(spec), generator.submit(spec)
    assert generator.client.tasks.retrieve(second.job_id).status == "THROTTLED"
    assert generator.poll(second).state is JobState.PENDING
    for job in (first, second):
        deadline = time.monotonic() + 10
        while (state := generator.poll(job).state) is not JobState.SUCCEEDED and time.monotonic() < deadline:
            time.sleep(0.1)
        assert state is JobState.SUCCEEDED
    assert generator.fetch(second).mime == "video/mp4"


def test_throttled_fault_sits_throttled_then_completes(sim: Any) -> None:
    sim.configure(fault_rate=1.0, faults=["throttled"])
    generator = image(sim)
    job = generator.submit(_image())
    assert generator.client.tasks.retrieve(job.job_id).status == "THROTTLED"
    assert generator.poll(job).state is JobState.PENDING
    sim.configure(fault_rate=0.0, faults=[], **FAST)
    assert _wait(generator, job) is JobState.SUCCEEDED


def _wait(generator: Any, job: Any, limit_s: float = 10) -> JobState:
    deadline = time.monotonic() + limit_s
    while not (state := generator.poll(job).state).terminal and time.monotonic() < deadline:
        time.sleep(0.1)
    return state


def test_missing_version_header_is_rejected_with_runways_error_shape(sim: Any) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    response = httpx.post(f"{sim.url}/runway/v1/text_to_image", json={"model": "gen4_image"}, headers=auth)
    assert response.status_code == 400
    assert set(response.json()) >= {"error"} and "X-Runway-Version" in response.json()["error"]
    response = httpx.get(f"{sim.url}/runway/v1/organization", headers={"X-Runway-Version": "2024-11-06"})
    assert response.status_code == 401 and "error" in response.json()


def test_invalid_ratio_is_a_validation_error_at_the_simulator(sim: Any) -> None:
    with pytest.raises(runwayml.BadRequestError) as caught:
        _client(sim).text_to_image.create(model="gen4_image", prompt_text="x", ratio="1000:1000")  # type: ignore[arg-type]
    body = caught.value.body
    assert isinstance(body, dict) and body["error"] == "Validation of body failed"
    assert body["issues"][0]["path"] == ["ratio"] and body["issues"][0]["code"] == "invalid_value"
    mapped = image(sim).map_error(caught.value, "create")
    assert mapped is not None and mapped.kind is ErrorKind.invalid_input
    assert "ratio: " in str(mapped)  # Runway's issue, path and message, in our error


@pytest.mark.parametrize(
    ("spec_changes", "needle"),
    [
        ({"width": 1000, "height": 700}, "no ratio for 1000x700"),  # no gen4_turbo ratio has this shape
        ({"model": "veo3.1", "aspect": Aspect.square, "width": None, "height": None}, "aspect 1:1"),
        ({"duration_s": 12.0}, "duration 12s"),
        ({"inputs": ()}, "without a keyframe or first_frame input"),  # gen4_turbo is image-to-video only
        ({"options": {"ratio": "4k"}}, "option ratio='4k'"),  # not one of gen4_turbo's ratios
        ({"model": "gen4.5", "inputs": (), "options": {"ratio": "1104:832"}}, "no ratio 1104:832"),  # i2v only
        ({"options": {"mode": "flex_1"}}, "option mode (its options: ratio)"),  # a Luma setting
        ({"inputs": (InputRef(role="style_reference", uri="https://a.b/c.png", sha256="x"),)}, "style_reference"),
    ],
)  # fmt: skip
def test_the_adapter_refuses_bad_specs_before_any_request(
    sim: Any, tmp_path: Path, spec_changes: dict[str, Any], needle: str
) -> None:
    error = refused(lambda: video(sim).submit(_video(tmp_path, **spec_changes)), ErrorKind.invalid_input)
    assert needle in str(error)
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
    out = run_job(video(sim), spec, schedule=TEST_SCHEDULE)
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

    out = run_job(video(sim), _big_keyframe(tmp_path), schedule=TEST_SCHEDULE, sleep=sleep)
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
    generator, spec = video(sim), _big_keyframe(tmp_path)
    for _ in range(2):
        generator.cancel(generator.submit(spec))
    assert len(_api(sim, "POST", "/v1/uploads")) == 2
    first, second = _api(sim, "POST", "/v1/image_to_video")
    assert first["body"]["promptImage"] != second["body"]["promptImage"]


def test_an_unknown_runway_uri_is_a_validation_error(sim: Any) -> None:
    with pytest.raises(runwayml.BadRequestError) as caught:
        _client(sim).image_to_video.create(model="gen4_turbo", prompt_image="runway://nope", ratio="1280:720")
    assert caught.value.body["issues"][0]["path"] == ["promptImage"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("keyframe", "needle"),
    [
        (lambda p: _not_media(p, "frame.png").uri, "'frame.png' is not image media (its bytes are something else)"),
        (lambda p: _source_clip(p).as_uri(), "is not image media (its bytes are video/mp4)"),
        (lambda p: (p / "missing.png").as_uri(), "cannot be read"),
        (lambda p: "data:image/png;base64,iVBORw0KGgo=", "cannot be read: not a local file"),  # not passed on
        (lambda p: "/etc/passwd", "cannot be read"),
    ],
)  # fmt: skip
def test_a_keyframe_goes_out_only_when_its_bytes_are_an_image(
    sim: Any, tmp_path: Path, keyframe: Any, needle: str
) -> None:
    spec = _video(tmp_path, inputs=(InputRef(role="keyframe", uri=keyframe(tmp_path), sha256="x"),))
    assert needle in str(refused(lambda: video(sim).submit(spec), ErrorKind.invalid_input))
    assert _api(sim) == []


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
    generator = image(sim, timeout=0.3)
    error = refused(lambda: generator.submit(_image()), kind)
    assert error.kind.transient and isinstance(error.__cause__, sdk_error)
    assert len(_api(sim, "POST")) == 1  # the SDK's 2 retries are off for creates: no duplicate paid job
    if fault == "429":
        assert error.retry_after == 7


def test_a_rate_limited_poll_is_mapped_with_runways_retry_after(sim: Any) -> None:
    """One poll, one GET (the SDK's retries are off; wait_for waits out a failing poll), mapped with the pause
    Runway asks for."""
    generator = image(sim)
    job = generator.submit(_image())
    sim.configure(fault_rate=1.0, faults=["429"], retry_after_s=0.1)
    error = refused(lambda: generator.poll(job), ErrorKind.rate_limited)
    assert error.retry_after == pytest.approx(0.1)
    assert len(_api(sim, "GET", "/v1/tasks/")) == 1


def test_the_sdk_default_would_resend_a_create_on_5xx(sim: Any) -> None:
    """Why creates go out with max_retries=0: the stock client sends the same paid POST three times."""
    sim.configure(fault_rate=1.0, faults=["5xx"])
    client = runwayml.RunwayML(api_key=KEY, base_url=_url(sim))
    with pytest.raises(runwayml.InternalServerError):
        client.text_to_image.create(model="gen4_image", prompt_text="x", ratio="1080:1080")
    assert len(_api(sim, "POST")) == 3


@pytest.mark.parametrize(
    ("fault", "kind", "codes"),
    [
        ("failed", ErrorKind.generation_failed, {"INTERNAL"}),
        ("moderation", ErrorKind.moderation_input, {"SAFETY.INPUT.TEXT", "SAFETY.INPUT.IMAGE"}),
        ("moderation_output", ErrorKind.moderation_output, {"SAFETY.OUTPUT.IMAGE"}),
    ],
)
def test_failed_tasks_carry_the_failure_codes_kind(
    sim: Any, fault: str, kind: ErrorKind, codes: set[str]
) -> None:
    sim.configure(fault_rate=1.0, faults=[fault])
    error = refused(lambda: run_job(image(sim), _image(), schedule=TEST_SCHEDULE), kind)
    assert isinstance(error, JobFailed)  # the task ended without an output: nothing billed
    assert error.kind.transient is (kind is ErrorKind.generation_failed)
    assert str(error).split(": ")[2] in codes


def test_failure_code_mapping() -> None:
    assert runway.failure_kind("SAFETY.INPUT.TEXT") is ErrorKind.moderation_input
    assert runway.failure_kind("INPUT_PREPROCESSING.SAFETY.TEXT") is ErrorKind.moderation_input
    assert runway.failure_kind("SAFETY.OUTPUT.VIDEO") is ErrorKind.moderation_output
    assert runway.failure_kind("INTERNAL.BAD_OUTPUT.CODE01") is ErrorKind.generation_failed
    assert runway.failure_kind("ASSET.INVALID") is ErrorKind.invalid_input
    assert runway.failure_kind(None) is ErrorKind.generation_failed


def test_an_expired_output_url_is_not_found(sim: Any) -> None:
    sim.configure(fault_rate=1.0, faults=["expired"])
    error = refused(lambda: run_job(image(sim), _image(), schedule=TEST_SCHEDULE), ErrorKind.not_found)
    assert "expired" in str(error) and not error.kind.transient
    assert _api(sim, "GET", "/_media/")[-1]["status"] == 403


def test_an_output_url_expires_after_the_ttl(sim: Any) -> None:
    sim.configure(output_ttl_s=0.2)
    generator = image(sim)
    job = generator.submit(_image())
    assert _wait(generator, job) is JobState.SUCCEEDED
    time.sleep(0.3)
    assert "expired" in str(refused(lambda: generator.fetch(job), ErrorKind.not_found))


def test_out_of_credits_and_daily_quota(sim: Any) -> None:
    _limits(sim, credit_balance=3)
    refused(lambda: image(sim).submit(_image()), ErrorKind.insufficient_credits)
    _limits(sim, credit_balance=100, daily_generations=0)
    assert refused(lambda: image(sim).submit(_image()), ErrorKind.rate_limited).kind.transient
    assert len(_api(sim, "POST")) == 2


def test_cancel_and_organization(sim: Any, tmp_path: Path) -> None:
    generator = video(sim)
    job = generator.submit(_video(tmp_path))
    generator.cancel(job)
    assert generator.poll(job).state is JobState.CANCELLED
    assert _api(sim, "DELETE")[0]["path"] == f"/runway/v1/tasks/{job.job_id}"
    org = generator.organization()
    assert org.credit_balance == 100_000 - 10 and org.usage.models["gen4_turbo"].daily_generations == 1
    assert org.tier.models["gen4_turbo"].max_concurrent_generations == 2


def test_bad_key_is_auth_and_missing_key_is_not_configured(sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = image(sim, api_key="key_nope")
    assert not refused(lambda: bad.submit(_image()), ErrorKind.auth).kind.transient
    monkeypatch.delenv(simulation.SIMULATOR_ENV, raising=False)
    monkeypatch.delenv(RUNWAY.keys[0], raising=False)
    missing = refused(lambda: runway.RunwayImage().submit(_image()), ErrorKind.not_configured)
    assert "RUNWAYML_API_SECRET" in str(missing)
    assert len(_api(sim)) == 1


def test_a_poll_that_fails_transiently_is_repeated_never_resubmitted(sim: Any) -> None:
    """A poll of the wait answers 503; run_job waits and looks again, and never sends the create twice."""
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        # The first wait turns 5xx faults on for the next poll, the pause after it turns them off again.
        sim.configure(faults=["5xx"], fault_rate=1.0 if not waits else 0.0)
        waits.append(seconds)
        time.sleep(seconds)

    out = run_job(image(sim), _image(), schedule=TEST_SCHEDULE, sleep=sleep)
    assert out.mime == "image/png"
    assert len(_api(sim, "POST")) == 1
    polls = _api(sim, "GET", part="/v1/tasks/")
    statuses = [p["status"] for p in polls]
    assert statuses[0] == 503 and set(statuses[1:]) == {200}  # one GET per look: the SDK retries nothing
    assert waits[1] >= 1.0  # the pause after the failed look


def test_a_rate_limited_create_is_waited_out_and_sent_again(sim: Any) -> None:
    """A 429 means Runway took nothing: run_job resubmits after Retry-After, and exactly one task is made."""
    sim.configure(faults=["429"], fault_rate=1.0, retry_after_s=0.3)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            sim.configure(fault_rate=0.0)  # the vendor lets us through on the third try
        time.sleep(seconds)

    out = run_job(image(sim), _image(), schedule=TEST_SCHEDULE, sleep=sleep)
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


def _model_for(operation: Operation) -> str:
    """The Runway model its declaration names for an edit."""
    (model,) = [card.model for card in RUNWAY.cards(Capability.video) if operation in card.operations]
    return model


def _operation(tmp_path: Path, operation: Operation, **changes: Any) -> AssetSpec:
    model = _model_for(operation)
    source = InputRef(role="source", uri=_source_clip(tmp_path).as_uri(), sha256="x")
    return _video(tmp_path, model=model, operation=operation, inputs=(source,), **changes)


def test_modify_end_to_end_sends_aleph2_to_video_to_video(sim: Any, tmp_path: Path) -> None:
    spec = _operation(tmp_path, Operation.modify, prompt="make it a watercolour")
    out = run_job(video(sim), spec, schedule=TEST_SCHEDULE)
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
    generator = video(sim)
    out = run_job(generator, spec, schedule=TEST_SCHEDULE)
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
    task = generator.client.tasks.retrieve(_api(sim, "GET", "/v1/tasks/")[-1]["path"].rsplit("/", 1)[1])
    assert task.status == "SUCCEEDED" and task.cost.credits == 4  # 2 s of source x 2 credits


def test_a_public_url_is_sent_as_the_video_uri(sim: Any, tmp_path: Path) -> None:
    url = "https://cdn.example.com/clips/source.mp4"
    spec = _operation(tmp_path, Operation.upscale)
    spec = spec.model_copy(update={"inputs": (spec.inputs[0].model_copy(update={"url": url}),)})
    generator = video(sim)
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
    with pytest.raises(runwayml.BadRequestError) as caught:
        _client(sim).post(f"/v1/{endpoint}", body=body, cast_to=object)
    error = caught.value.body
    assert isinstance(error, dict) and error["error"] == "Validation of body failed"
    assert [(i["path"], i["code"]) for i in error["issues"]] == [(path, code)]
    mapped = video(sim).map_error(caught.value, "create")
    assert mapped is not None and mapped.kind is ErrorKind.invalid_input


def test_a_source_longer_than_30s_is_rejected_on_video_uri(sim: Any, tmp_path: Path) -> None:
    long = _source_clip(tmp_path, (64, 36), duration_s=31.0)
    uri = runway.video_uri(InputRef(role="source", uri=long.as_uri(), sha256="x"))
    with pytest.raises(runwayml.BadRequestError) as caught:
        _client(sim).video_upscale.create(model="magnific_video_upscaler_creative", video_uri=uri)
    assert caught.value.body["issues"][0]["path"] == ["videoUri"]  # type: ignore[index]
    assert "30 seconds" in str(video(sim).map_error(caught.value, "create"))


def _big_source(tmp_path: Path) -> InputRef:
    """A real MP4 (the source clip's bytes, padded) too big for a data URI."""
    big = tmp_path / "big.mp4"
    big.write_bytes((tmp_path / "source.mp4").read_bytes() + bytes(4 * 1024 * 1024))
    return InputRef(role="source", uri=big.as_uri(), sha256="x")


def _not_media(tmp_path: Path, name: str) -> InputRef:
    """A file named like media whose bytes are text."""
    (path := tmp_path / name).write_text("#!/bin/sh\necho not a picture\n")
    return InputRef(role="source", uri=path.as_uri(), sha256="x")


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda s, p: s.model_copy(update={"width": 1000, "height": 700}), "no ratio"),  # the sim's ratio 400
        (lambda s, p: s.model_copy(update={"inputs": ()}),
         "without exactly one input with role source"),  # the sim's missing videoUri
        (lambda s, p: s.model_copy(update={"inputs": (_big_source(p),)}), "public URL"),  # the sim's too_big
        (lambda s, p: s.model_copy(update={"inputs": (_not_media(p, "clip.mp4"),)}), "'clip.mp4' is not video media"),
        (lambda s, p: s.model_copy(update={"inputs": (*s.inputs, InputRef(role="reference", uri="https://a.b/c.png",
                                                                          sha256="x"))}), "'reference'"),
        (lambda s, p: s.model_copy(update={"operation": Operation.reframe}), "operation reframe (it does: modify)"),
        (lambda s, p: s.model_copy(update={"operation": Operation.add_audio}), "operation add_audio (it does: modify)"),
        (lambda s, p: s.model_copy(update={"model": "gen4_turbo"}), "operation modify (it does: none)"),
        (lambda s, p: s.model_copy(update={"operation": None}), "it only edits a source (operation modify)"),
        (lambda s, p: s.model_copy(update={"operation": Operation.upscale}), "operation upscale (it does: modify)"),
        (lambda s, p: s.model_copy(update={"options": {"ratio": "1080:1920"}}), "option ratio='1080:1920'"),
    ],
)  # fmt: skip
def test_the_adapter_refuses_bad_operation_specs_before_any_request(
    sim: Any, tmp_path: Path, make: Any, needle: str
) -> None:
    spec = make(_operation(tmp_path, Operation.modify), tmp_path)
    assert needle in str(refused(lambda: video(sim).submit(spec), ErrorKind.invalid_input))
    assert _api(sim) == []


def test_an_operation_on_an_image_model_is_refused_before_any_request(sim: Any) -> None:
    error = refused(lambda: image(sim).submit(_image(operation=Operation.upscale)), ErrorKind.invalid_input)
    assert "gen4_image cannot make operation upscale (it does: none)" in str(error)
    assert _api(sim) == []


def test_upscale_to_a_chosen_resolution(sim: Any, tmp_path: Path) -> None:
    spec = _operation(
        tmp_path, Operation.upscale, width=None, height=None, aspect=None, options={"resolution": "720p"}
    )
    out = run_job(video(sim), spec, schedule=TEST_SCHEDULE)
    (create,) = _api(sim, "POST")
    body = create["body"]
    assert body.pop("videoUri").startswith("data:video/mp4;base64,")
    assert body == {"model": "magnific_video_upscaler_creative", "resolution": "720p"}
    (clip := tmp_path / "720p.mp4").write_bytes(out.data)
    assert (probe(clip).width, probe(clip).height) == (1280, 720)


def test_enhance_frame_rate_end_to_end_retimes_the_source(sim: Any, tmp_path: Path) -> None:
    spec = _operation(tmp_path, Operation.enhance_frame_rate, fps=60)
    out = run_job(video(sim), spec, schedule=TEST_SCHEDULE)
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
    assert out.cost_usd == pytest.approx(2 * RUNWAY.card("enhance_frame_rate").price.usd)  # 2 s of source


@pytest.mark.parametrize(
    ("operation", "make", "needle"),
    [
        (Operation.enhance_frame_rate, lambda s: s, "needs spec.fps"),
        (Operation.enhance_frame_rate, lambda s: s.model_copy(update={"fps": 23}),
         "23 fps (allowed: 24, 25, 30, 48, 50, 60, 120)"),
        (Operation.enhance_frame_rate, lambda s: s.model_copy(update={"fps": 60, "options": {"resolution": "2k"}}),
         "option resolution (its options: none)"),
        (Operation.upscale, lambda s: s.model_copy(update={"options": {"resolution": "8k"}}),
         "option resolution='8k' (allowed: 720p|1k|2k|4k)"),
        (Operation.upscale, lambda s: s.model_copy(update={"options": {"strength": 0.5}}),
         "option strength (its options: resolution)"),
        (Operation.upscale, lambda s: s.model_copy(update={"inputs": (*s.inputs, InputRef(
            role="style_reference", uri="https://a.b/c.png", sha256="x"))}), "takes only its source input"),
    ],
)  # fmt: skip
def test_the_adapter_refuses_bad_upscale_and_frame_rate_specs_before_any_request(
    sim: Any, tmp_path: Path, operation: Operation, make: Any, needle: str
) -> None:
    spec = make(_operation(tmp_path, operation))
    assert needle in str(refused(lambda: video(sim).submit(spec), ErrorKind.invalid_input))
    assert _api(sim) == []


def test_style_and_character_references_go_out_as_reference_images(sim: Any, tmp_path: Path) -> None:
    face = make_keyframe(tmp_path / "face.png", (64, 64))
    refs = (
        InputRef(role="style_reference", uri="https://cdn.example.com/style.png", sha256="x"),
        InputRef(role="character_reference", uri=face.as_uri(), sha256="x"),
    )
    spec = _image(inputs=refs, options={"ratio": "1360:768"}, aspect=None, width=None, height=None)
    out = run_job(image(sim), spec, schedule=TEST_SCHEDULE)
    assert Image.open(io.BytesIO(out.data)).size == (out.width, out.height) == (1360, 768)
    (create,) = _api(sim, "POST")
    body = create["body"]
    assert body["ratio"] == "1360:768"
    style, character = body["referenceImages"]
    assert style == {"uri": "https://cdn.example.com/style.png"}
    assert character["uri"].startswith("data:image/png;base64,")

    too_many = _image(inputs=refs * 2)
    assert "up to 3" in str(refused(lambda: image(sim).submit(too_many), ErrorKind.invalid_input))
    assert len(_api(sim, "POST")) == 1


def _sdk_requests(module: Any) -> dict[str, dict[str, Any]]:
    """The fields of each model's request in one of the SDK's create_params modules, by model name."""
    found: dict[str, dict[str, Any]] = {}
    for value in vars(module).values():
        if isinstance(value, type) and "model" in getattr(value, "__annotations__", {}):
            hints = get_type_hints(value)
            found |= dict.fromkeys(literals(hints["model"]), hints)
    return found


def _reduced(ratio: str) -> str:
    width, height = map(int, ratio.split(":"))
    return f"{width // math.gcd(width, height)}:{height // math.gcd(width, height)}"


@pytest.mark.parametrize(
    "card", [c for c in RUNWAY.cards(Capability.video) if c.makes_new], ids=lambda card: card.model
)
def test_each_new_video_card_says_what_the_installed_sdk_sends(card: Any) -> None:
    """The declaration is data now: its ratios and lengths must still be the SDK's request types' enums."""
    from_image = _sdk_requests(image_to_video_create_params)[card.model]
    assert set(card.sizes) == set(literals(from_image["ratio"]))
    assert set(card.aspects) == {_reduced(ratio) for ratio in card.sizes}
    from_text = _sdk_requests(text_to_video_create_params).get(card.model)
    if from_text is None:
        assert "keyframe|first_frame" in card.needs  # no text_to_video for it: a keyframe is a must
    else:
        assert set(runway.TEXT_TO_VIDEO_RATIOS[card.model]) == set(literals(from_text["ratio"]))
    if durations := literals(from_image["duration"]):
        assert card.durations_s == tuple(float(d) for d in durations)
    else:  # any whole number of seconds
        assert all(d.is_integer() for d in card.durations_s)


@pytest.mark.parametrize("card", RUNWAY.cards(Capability.image), ids=lambda card: card.model)
def test_each_image_card_says_what_the_installed_sdk_sends(card: Any) -> None:
    request = _sdk_requests(text_to_image_create_params)[card.model]
    assert set(card.sizes) == set(literals(request["ratio"]))
    assert set(card.aspects) == {_reduced(ratio) for ratio in card.sizes}


def test_the_upscale_targets_and_frame_rates_are_the_installed_sdks() -> None:
    magnific = RUNWAY.card("magnific_video_upscaler_creative")
    targets = literals(get_type_hints(MagnificVideoUpscalerCreative)["resolution"])
    assert magnific.sizes == targets == magnific.options["resolution"].choices
    rates = literals(get_type_hints(EnhanceFrameRate)["target_framerate"])
    # spec.fps is a whole number, so the NTSC rates (23_98, 29_97, 59_94) are not offered
    assert RUNWAY.card("enhance_frame_rate").frame_rates == tuple(int(r) for r in rates if r.isdigit())


@pytest.mark.parametrize(
    ("endpoint", "field", "model", "media"),
    [
        ("image_to_video", "promptImage", "gen4_turbo", "image"),
        ("text_to_image", "referenceImages", "gen4_image", "image"),
        ("video_to_video", "videoUri", "aleph2", "video"),
    ],
)
def test_the_simulator_answers_bad_media_as_runway_does(sim: Any, endpoint, field, model, media) -> None:
    """Bytes that are not the media they claim get Runway's 400 at the request, never a 500 from our renderer."""
    junk = f"data:{media}/png;base64," + base64.b64encode(b"not media at all").decode()
    body: dict[str, Any] = {"model": model, "promptText": "x", "ratio": "1280:720", "duration": 5}
    body[field] = [{"uri": junk}] if field == "referenceImages" else junk
    headers = {"Authorization": f"Bearer {KEY}", "X-Runway-Version": "2024-11-06"}
    answer = httpx.post(f"{sim.url}/runway/v1/{endpoint}", json=body, headers=headers)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "Validation of body failed"
    assert "readable" in answer.json()["issues"][0]["message"]
