"""The Runware adapter (plain httpx, REST task array) against simulator/runware.py over loopback: what the contract
suite does not see — the imageInference task Runware receives, sizes on its 64-pixel grid, options, references,
the taskUUID made from the spec (a lost answer is recovered, never paid twice) and Runware's error codes."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cutroom.assets import AssetSpec, Continuity, InputRef
from cutroom.channels import SIZES, Aspect
from cutroom.loopback import free_port
from providers import callbacks, declarations
from providers.callbacks import CallbackNews
from providers.errors import ErrorKind, JobFailed, ProviderError
from providers.polling import run_job
from providers.protocol import JobRef
from providers.runware import (
    CODES,
    RunwareImage,
    RunwareVideo,
    code_kind,
    fit_size,
    task_uuid,
    video_size,
    webhook_news,
)
from simulator import runware as simulated
from tests.vendor_helpers import image_ref, image_spec, not_an_image, on_simulator, refused

SCALE = 0.01
KEY = "cJp61MizfKPGbVDnqfqk7m7jpuV8RWfe"
SCHNELL, FLUX2, HIDREAM = "runware:100@1", "runware:400@1", "runware:97@1"


@pytest.fixture
def sim(simulator: Any) -> Iterator[Any]:
    simulator.reset(
        latency_scale=SCALE, latency_jitter=0.0
    )  # also forgets every task UUID and refills credits
    yield simulator


def _adapter(sim: Any, model: str | None = None, **options: Any) -> RunwareImage:
    return on_simulator(RunwareImage, sim, model, scale=SCALE, timeout=5.0, **options)


def _spec(model: str = SCHNELL, aspect: Aspect = Aspect.landscape, **changes: Any) -> AssetSpec:
    return image_spec("runware", model, "a blue bottle on sand", aspect, **changes)


def _tasks(sim: Any, kind: str = "imageInference") -> list[dict[str, Any]]:
    """Every task of that type Runware was sent, in order."""
    return [task for r in sim.requests() if r["vendor"] == "runware" and r["path"] == "/runware/v1"
            for task in r["body"] or [] if task.get("taskType") == kind]  # fmt: skip


def _accepted(sim: Any) -> int:
    return sum(1 for job in sim.jobs() if job["vendor"] == "runware")


# -- the task ------------------------------------------------------------------------------------------------------

GRID_SIZES = {Aspect.landscape: (1280, 704), Aspect.square: (1088, 1088), Aspect.vertical: (704, 1280)}


@pytest.mark.parametrize("aspect", list(Aspect), ids=lambda a: a.value)
def test_each_aspect_goes_on_the_64_pixel_grid_as_one_async_task(sim, aspect: Aspect) -> None:
    spec = _spec(aspect=aspect)
    generator = _adapter(sim)
    job = generator.submit(spec)
    made = run_job(generator, spec)  # a second submit of the same spec: the same task, not a second one
    task = _tasks(sim)[0]
    assert task == {
        "taskType": "imageInference",
        "taskUUID": job.job_id,
        "model": SCHNELL,
        "positivePrompt": "a blue bottle on sand",
        "width": GRID_SIZES[aspect][0],
        "height": GRID_SIZES[aspect][1],
        "numberResults": 1,
        "outputType": "URL",
        "deliveryMethod": "async",
        "includeCost": True,
        "safety": {"checkContent": True},
        "seed": 7,
    }
    assert (made.width, made.height) == GRID_SIZES[aspect]
    asked = SIZES[aspect][0] / SIZES[aspect][1]
    assert made.width / made.height == pytest.approx(asked, rel=0.03)
    assert job.job_id == task_uuid(spec, generator.account) and uuid.UUID(job.job_id).version == 4
    assert _accepted(sim) == 1
    # Booked at Runware's reported USD cost, which the estimate at the grid size agrees with.
    assert made.cost_usd == pytest.approx(generator.estimate(spec)) and made.cost_usd > 0


def test_sizes_are_scaled_into_128_to_2048() -> None:
    assert fit_size(4096, 2304) == (2048, 1152)
    assert fit_size(100, 300) == (128, 384)
    assert fit_size(1000, 1000) == (1024, 1024)


def test_options_reach_runware_by_its_own_names(sim) -> None:
    options = {"steps": 30, "CFGScale": 5.5, "scheduler": "Euler", "negativePrompt": "text, blur",
               "outputFormat": "PNG"}  # fmt: skip
    made = run_job(_adapter(sim, HIDREAM), _spec(HIDREAM, options=options))
    assert options.items() <= _tasks(sim)[0].items()
    assert made.mime == "image/png"


def test_a_seed_of_0_lets_runware_pick_one(sim) -> None:
    run_job(_adapter(sim), _spec(seed=0))
    assert "seed" not in _tasks(sim)[0]


# -- references ----------------------------------------------------------------------------------------------------


def test_a_reference_is_the_seed_image_a_link_as_it_is_a_local_file_as_a_data_uri(
    sim, tmp_path: Path
) -> None:
    linked = InputRef(role="reference", uri="https://cdn.example.com/ref.png", sha256="y")
    run_job(_adapter(sim), _spec(inputs=(linked,), options={"strength": 0.6}))
    local = image_ref(tmp_path / "ref.png")
    run_job(_adapter(sim, "runware:101@1"), _spec("runware:101@1", inputs=(local,)))
    first, second = _tasks(sim)
    assert first["seedImage"] == "https://cdn.example.com/ref.png" and first["strength"] == 0.6
    assert second["seedImage"].startswith("data:image/png;base64,")
    assert base64.b64decode(second["seedImage"].split(",", 1)[1]) == (tmp_path / "ref.png").read_bytes()


def test_flux_2_takes_every_reference_role_as_reference_images(sim, tmp_path: Path) -> None:
    refs = (
        image_ref(tmp_path / "s.png", "style_reference"),
        image_ref(tmp_path / "c.png", "character_reference"),
    )
    run_job(_adapter(sim, FLUX2), _spec(FLUX2, inputs=refs))
    task = _tasks(sim)[0]
    assert len(task["inputs"]["referenceImages"]) == 2 and "seedImage" not in task


def test_what_runware_cannot_take_is_refused_before_any_request(sim, tmp_path: Path) -> None:
    text = not_an_image(tmp_path / "brief.png")
    error = refused(lambda: _adapter(sim).submit(_spec(inputs=(text,))), ErrorKind.invalid_input)
    assert "not image media" in str(error)
    two = (image_ref(tmp_path / "a.png"), image_ref(tmp_path / "b.png"))
    refused(lambda: _adapter(sim).submit(_spec(inputs=two)), ErrorKind.invalid_input)  # one seed image
    refused(lambda: _adapter(sim).submit(_spec(options={"strength": 0.5})), ErrorKind.invalid_input)
    refused(lambda: _adapter(sim).submit(_spec(prompt="x")), ErrorKind.invalid_input)
    assert [r for r in sim.requests() if r["vendor"] == "runware"] == []


# -- paid once -----------------------------------------------------------------------------------------------------


def test_a_create_whose_answer_was_lost_is_recovered_not_paid_twice(sim) -> None:
    spec, generator = _spec(), _adapter(sim)
    # The create reached Runware but its answer never came back: Runware has the task under the spec's UUID.
    lost = generator.task(spec, generator.card(spec), task_uuid(spec, generator.account))
    httpx.post(f"{sim.url}/runware/v1", json=[lost], headers={"authorization": f"Bearer {KEY}"})
    made = run_job(generator, spec)
    assert made.data and _accepted(sim) == 1
    assert [t["taskUUID"] for t in _tasks(sim)] == [lost["taskUUID"]] * 2
    assert [t["taskUUID"] for t in _tasks(sim, "getResponse")][0] == lost["taskUUID"]  # the conflict's look


def test_after_a_failed_task_the_next_submit_gets_a_new_uuid(sim) -> None:
    spec, generator = _spec(), _adapter(sim)
    sim.configure(fault_rate=1.0, faults=["failed"])
    with pytest.raises(JobFailed) as caught:
        run_job(generator, spec)
    assert caught.value.kind is ErrorKind.generation_failed and "timeoutProvider" in str(caught.value)
    sim.configure(fault_rate=0.0)
    made = run_job(generator, spec)  # as the task's retry does
    assert made.data
    sent = [t["taskUUID"] for t in _tasks(sim)]
    assert sent == [task_uuid(spec, generator.account, 0)] * 2 + [task_uuid(spec, generator.account, 1)]


def test_a_moderated_prompt_stays_refused_when_resubmitted(sim) -> None:
    spec, generator = _spec(), _adapter(sim)
    sim.configure(fault_rate=1.0, faults=["moderation"])
    refused(lambda: generator.submit(spec), ErrorKind.moderation_input)
    sim.configure(fault_rate=0.0)
    error = refused(lambda: generator.submit(spec), ErrorKind.moderation_input)
    assert "contentModerated" in str(error)
    assert len({t["taskUUID"] for t in _tasks(sim)}) == 1


def test_task_uuids_are_the_spec_s_the_account_s_and_the_attempt_s() -> None:
    spec = _spec()
    assert task_uuid(spec, "a") == task_uuid(spec, "a")
    assert len({task_uuid(spec, "a"), task_uuid(spec, "b"), task_uuid(spec, "a", 1),
                task_uuid(spec.model_copy(update={"seed": 8}), "a")}) == 4  # fmt: skip
    assert simulated.UUID4_RE.match(task_uuid(spec, "a"))
    assert KEY not in RunwareImage(api_key=KEY).account


# -- Runware's own answers -----------------------------------------------------------------------------------------


def test_an_empty_balance_is_insufficient_credits(sim) -> None:
    httpx.post(f"{sim.url}/runware/_sim/credits", json={"balance": 0}).raise_for_status()
    error = refused(lambda: _adapter(sim).submit(_spec()), ErrorKind.insufficient_credits)
    assert "insufficientCredits" in str(error)


def test_a_refused_key_is_auth_and_never_quoted(sim) -> None:
    bad = "x" * 31
    error = refused(lambda: _adapter(sim, api_key=bad).submit(_spec()), ErrorKind.auth)
    assert "invalidApiKey" in str(error) and bad not in str(error)


def test_a_model_runware_does_not_serve_is_invalid_input(sim) -> None:
    generator = _adapter(sim)
    card = generator.check(_spec()).model_copy(update={"model": "runware:999@1"})

    def sent() -> str:
        with generator.calling("create"):
            return generator.create(_spec(), card)

    assert "invalidModel" in str(refused(sent, ErrorKind.invalid_input))


def test_a_flagged_output_is_never_downloaded(sim) -> None:
    sim.configure(fault_rate=1.0, faults=["moderation_output"])
    with pytest.raises(JobFailed) as caught:
        run_job(_adapter(sim), _spec())
    assert caught.value.kind is ErrorKind.moderation_output
    assert [r for r in sim.requests() if "/_media/" in r["path"]] == []


def test_a_task_runware_does_not_have_is_not_found(sim) -> None:
    job = JobRef(provider="runware", job_id=str(uuid.uuid4()), spec_key="0")
    error = refused(lambda: _adapter(sim).poll(job), ErrorKind.not_found)
    assert "taskNotFound" in str(error)


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("invalidApiKey", ErrorKind.auth),
        ("insufficientCredits", ErrorKind.insufficient_credits),
        ("contentModerated", ErrorKind.moderation_input),
        ("timeoutProvider", ErrorKind.generation_failed),
        ("invalidPositivePrompt", ErrorKind.invalid_input),
        ("invalidSeedImage", ErrorKind.invalid_input),
        ("tooManyRequests", ErrorKind.rate_limited),
        ("providerNSFWContent", ErrorKind.moderation_input),
    ],
)
def test_error_codes_map_to_kinds(code: str, kind: ErrorKind) -> None:
    assert code_kind(code) is kind
    assert set(CODES) >= {"invalidApiKey", "insufficientCredits", "contentModerated", "timeoutProvider"}


def test_an_unknown_code_keeps_its_status_s_meaning() -> None:
    assert code_kind("somethingNew", 403) is ErrorKind.auth
    assert code_kind("somethingNew", 502) is ErrorKind.generation_failed


# -- video ---------------------------------------------------------------------------------------------------------

SEEDANCE, KLING_STD, KLING_PRO, VEO = "bytedance:1@1", "klingai:5@1", "klingai:5@2", "google:3@1"
LINK = "https://cdn.example.com/start.png"


def _video(sim: Any, model: str | None = None) -> RunwareVideo:
    return on_simulator(RunwareVideo, sim, model, scale=SCALE, timeout=10.0)


def _clip(model: str = SEEDANCE, aspect: Aspect | None = Aspect.vertical, **changes: Any) -> AssetSpec:
    width, height = SIZES[aspect] if aspect else (None, None)
    fields: dict[str, Any] = {"kind": "video", "provider": "runware", "model": model, "prompt": "waves on a reef",
                              "aspect": aspect, "width": width, "height": height, "duration_s": 5.0, "fps": 24,
                              "seed": 7}  # fmt: skip
    return AssetSpec(**{**fields, **changes})


def _frame(role: str, uri: str = LINK, **fields: Any) -> InputRef:
    return InputRef(role=role, uri=uri, sha256="0" * 64, **fields)


def test_a_clip_is_one_async_video_task_at_the_card_s_size_booked_at_runware_s_cost(sim) -> None:
    spec = _clip(inputs=(_frame("keyframe"), _frame("last_frame", "https://cdn.example.com/end.png")))
    generator = _video(sim)
    job = generator.submit(spec)
    made = run_job(generator, spec)  # the same spec again: the same task, not a second one

    sent = _tasks(sim, "videoInference")
    assert [t["taskUUID"] for t in sent] == [job.job_id] * 2  # resent under its UUID: a conflict, not a job
    assert sent[0] == {
        "taskType": "videoInference", "taskUUID": job.job_id, "model": SEEDANCE,
        "positivePrompt": "waves on a reef", "width": 704, "height": 1248, "duration": 5, "outputType": "URL",
        "outputFormat": "MP4", "numberResults": 1, "deliveryMethod": "async", "includeCost": True, "fps": 24,
        "seed": 7, "frameImages": [{"inputImage": LINK, "frame": "first"},
                                   {"inputImage": "https://cdn.example.com/end.png", "frame": "last"}],
    }  # fmt: skip
    assert made.mime == "video/mp4" and (made.width, made.height) == (704, 1248)
    assert made.duration_s == pytest.approx(5.0, abs=0.2)
    assert made.cost_usd == pytest.approx(5 * 0.036) == pytest.approx(generator.estimate(spec))
    assert _accepted(sim) == 1


@pytest.mark.parametrize(
    ("model", "aspect", "size"),
    [(SEEDANCE, Aspect.square, (960, 960)), (SEEDANCE, Aspect.landscape, (1248, 704)),
     (KLING_PRO, Aspect.vertical, (1080, 1920)), (VEO, Aspect.landscape, (1280, 720))],
)  # fmt: skip
def test_each_model_is_asked_for_its_size_of_the_shape_asked(model: str, aspect: Aspect, size) -> None:
    spec = _clip(model, aspect, duration_s=8.0 if model == VEO else 5.0, inputs=(_frame("keyframe"),))
    assert video_size(spec, declarations.vendor("runware").card(model)) == size


def test_a_local_start_frame_goes_as_a_data_uri_and_starts_the_clip(sim, tmp_path: Path) -> None:
    start = image_ref(tmp_path / "start.png", "first_frame", (720, 1280))
    run_job(_video(sim, KLING_STD), _clip(KLING_STD, inputs=(start,)))
    [task] = _tasks(sim, "videoInference")
    [first] = task["frameImages"]
    assert first["frame"] == "first" and first["inputImage"].startswith("data:image/png;base64,")
    assert (task["width"], task["height"]) == (720, 1280)


def test_a_continuing_shot_starts_from_the_previous_clip_s_last_frame(sim) -> None:
    previous = _frame("keyframe", continues="runware:0b9ba3a4-0c7a-4f6e-9d3b-2f1d7c1e5a6b")
    spec = _clip(inputs=(previous,))
    generator = _video(sim)
    run_job(generator, spec)
    assert _tasks(sim, "videoInference")[0]["frameImages"] == [{"inputImage": LINK, "frame": "first"}]
    assert generator.card(spec).continuity(spec) is Continuity.last_frame


def test_what_a_video_model_cannot_take_is_refused_before_any_request(sim, tmp_path: Path) -> None:
    start, end = _frame("keyframe"), _frame("last_frame")
    cases = {
        "a last frame Kling Standard does not take": _clip(KLING_STD, inputs=(start, end)),
        "Kling without a first frame": _clip(KLING_STD),
        "two first frames": _clip(inputs=(start, _frame("first_frame"))),
        "a shape Veo does not make": _clip(VEO, aspect=None, width=1000, height=1000, duration_s=8.0),
        "a length Seedance does not make": _clip(duration_s=6.0),
        "a prompt of one character": _clip(prompt="x"),
        "a start frame that is no image": _clip(inputs=(not_an_image(tmp_path / "s.png", "keyframe"),)),
    }
    for case, spec in cases.items():
        error = refused(lambda spec=spec: _video(sim, spec.model).submit(spec))
        assert error.kind is ErrorKind.invalid_input, f"{case}: {error}"
    assert [r for r in sim.requests() if r["vendor"] == "runware"] == []


def test_runware_refuses_a_last_frame_the_model_does_not_take_when_sent_anyway(sim) -> None:
    generator = _video(sim, KLING_STD)
    spec = _clip(KLING_STD, inputs=(_frame("keyframe"), _frame("last_frame")))
    error = refused(lambda: generator.create(spec, generator.card(spec)))
    assert error.kind is ErrorKind.invalid_input and "frameImages" in str(error)
    assert _accepted(sim) == 0


@pytest.mark.parametrize(
    ("fault", "kind"),
    [("moderation_output", ErrorKind.moderation_output), ("moderation", ErrorKind.moderation_input),
     ("failed", ErrorKind.generation_failed)],
)  # fmt: skip
def test_a_clip_that_ends_badly_says_why(sim, fault: str, kind: ErrorKind) -> None:
    sim.configure(fault_rate=1.0, faults=[fault])
    with pytest.raises((JobFailed, ProviderError)) as caught:
        run_job(_video(sim), _clip())
    assert caught.value.kind is kind


# -- webhooks ------------------------------------------------------------------------------------------------------

#: Seedance Lite's 60 s and FLUX dev's 3 s both become 3 s: a quarter of that covers a post answered late on a busy
#: machine (0.4-0.5 s seen under load, for a receiver just started). With callbacks on, the safety-net look comes
#: at 4.5 s.
WEBHOOK_SCALES = {"videoInference": 0.05, "imageInference": 1.0}


def _looks_at(sim: Any, task: str) -> list[float]:
    """When each getResponse of the task was sent."""
    return [r["time"] for r in sim.requests() if r["path"] == "/runware/v1"
            for t in r["body"] or [] if t.get("taskType") == "getResponse" and t["taskUUID"] == task]  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "adapter", "spec", "mime"),
    [
        ("imageInference", RunwareImage, lambda seed: _spec("runware:101@1", seed=seed), "image/jpeg"),
        ("videoInference", RunwareVideo, lambda seed: _clip(seed=seed), "video/mp4"),
    ],
    ids=["image", "video"],
)
def test_with_a_callback_url_a_task_is_seen_in_one_look_when_runware_posts_its_end(
    sim, monkeypatch, kind, adapter, spec, mime
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/cutroom/callbacks"
    monkeypatch.setenv(callbacks.LISTEN_ENV, f"127.0.0.1:{port}")
    monkeypatch.delenv(callbacks.URL_ENV, raising=False)
    scale = WEBHOOK_SCALES[kind]
    sim.configure(latency_scale=scale)
    called_back = on_simulator(adapter, sim, scale=scale, timeout=10.0, callback_url=url)
    polled = on_simulator(adapter, sim, scale=scale, timeout=10.0)

    made = run_job(called_back, spec(1))
    run_job(polled, spec(2))

    woken, scheduled = _tasks(sim, kind)
    assert woken["webhookURL"] == url and "webhookURL" not in scheduled
    assert made.mime == mime
    timing = {j["id"]: j for j in sim.jobs() if j["vendor"] == "runware"}[woken["taskUUID"]]
    looks = _looks_at(sim, woken["taskUUID"])
    assert len(looks) == 1 < len(_looks_at(sim, scheduled["taskUUID"]))  # woken by the post, not the schedule
    assert looks[0] - timing["finished"] <= 0.25 * (timing["finished"] - timing["created"])


def test_webhook_bodies_are_read_for_their_task_and_end_only() -> None:
    task = "5b1f0e0a-3c2d-4e5f-8a6b-7c8d9e0f1a2b"
    synchronous = {"taskType": "videoInference", "taskUUID": task, "videoURL": "https://v/x.mp4"}  # no status
    assert webhook_news({"data": [synchronous]}) == CallbackNews(job_id=task, ended=True)
    done = {**synchronous, "status": "success"}
    assert webhook_news({"data": [done]}) == CallbackNews(job_id=task, ended=True)
    failed = {"code": "timeoutProvider", "message": "…", "taskType": "videoInference", "taskUUID": task}
    assert webhook_news({"errors": [failed]}) == CallbackNews(job_id=task, ended=True)
    assert webhook_news(done) == CallbackNews(job_id=task, ended=True)  # a bare result item
    running = {"taskType": "videoInference", "taskUUID": task, "status": "processing"}
    assert webhook_news({"data": [running]}) == CallbackNews(job_id=task, ended=False)
    assert webhook_news({"id": task, "status": "Ready"}) is None  # BFL's
    assert webhook_news({"request_id": task, "status": "OK"}) is None  # fal's
    assert webhook_news({"task_id": task, "status": "COMPLETED"}) is None  # Freepik's
    assert webhook_news([done]) is None
