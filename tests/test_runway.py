"""The Runway adapter and the official `runwayml` SDK against simulator/runway.py over loopback HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import runwayml

from cutroom.assets import AssetKind, AssetSpec, InputRef
from cutroom.channels import Aspect
from cutroom.media import probe
from providers import runway, simulation
from providers.base import ErrorKind, JobState, PollSchedule, ProviderError, run_job
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
    ],
)
def test_the_adapter_refuses_bad_specs_before_any_request(
    sim: Any, tmp_path: Path, generator: Any, spec_changes: dict[str, Any]
) -> None:
    _raises(lambda: generator().submit(_video(tmp_path, **spec_changes)), ErrorKind.invalid_input)
    assert _api(sim) == []


def test_a_keyframe_over_5mb_as_a_data_uri_is_refused_before_any_request(sim: Any, tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + bytes(4 * 1024 * 1024))
    spec = _video(tmp_path, inputs=(InputRef(role="keyframe", uri=big.as_uri(), sha256="x"),))
    error = _raises(lambda: runway.RunwayVideo().submit(spec), ErrorKind.invalid_input)
    assert "data URI" in str(error)
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
