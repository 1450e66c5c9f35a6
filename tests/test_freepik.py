"""The Freepik (Kling) adapter against simulator/freepik.py over loopback: what the contract suite does not check —
the JSON Freepik receives per model family, the status path each family is read at, start and end frames as
links or base64, Kling's image rules, Elements' references, Freepik's error shapes, its 3-task cap, webhooks."""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from cutroom.assets import AssetKind, AssetSpec, Continuity, InputRef
from cutroom.channels import Aspect
from cutroom.loopback import free_port
from providers import callbacks, declarations
from providers.errors import ErrorKind, ProviderError
from providers.freepik import FreepikVideo, webhook_news
from providers.polling import run_job, wait_for
from providers.protocol import JobRef, JobState
from tests.vendor_helpers import not_an_image, on_simulator, refused

#: An account of its own (the simulator caps tasks in flight per key).
KEY = "FPSX" + "ab" * 16
SCALE = 0.01
LINK = "https://cdn.example.com/start.png"
API = "/freepik/v1/ai/image-to-video"
FREEPIK = declarations.vendor("freepik")


@pytest.fixture
def sim(simulator: Any) -> Any:
    simulator.reset(latency_scale=SCALE, latency_jitter=0)
    return simulator


def adapter(sim: Any, model: str | None = None, **options: Any) -> FreepikVideo:
    return on_simulator(FreepikVideo, sim, model, scale=SCALE, timeout=5.0, **{"api_key": KEY, **options})


def picture(path: Path, size: tuple[int, int] = (640, 360), fmt: str = "PNG") -> Path:
    Image.new("RGB", size, (30, 90, 160)).save(path, format=fmt)
    return path


def frame(path: Path | None = None, role: str = "keyframe", url: str | None = None, **extra: Any) -> InputRef:
    uri = path.as_uri() if path else (url or LINK)
    return InputRef(role=role, uri=uri, url=url, sha256="0" * 64, **extra)


def clip(model: str = "kling-v2-1-std", *inputs: InputRef, **changes: Any) -> AssetSpec:
    fields: dict[str, Any] = {"kind": AssetKind.video, "provider": "freepik", "model": model,
                              "prompt": "waves roll onto a pebble beach", "duration_s": 5.0, "inputs": inputs}  # fmt: skip
    return AssetSpec(**{**fields, **changes})


def calls(sim: Any, method: str | None = None) -> list[dict[str, Any]]:
    """Freepik API calls in the log (media downloads left out)."""
    return [r for r in sim.requests() if r["vendor"] == "freepik" and "/_media/" not in r["path"]
            and (method is None or r["method"] == method)]  # fmt: skip


def submitted(sim: Any) -> dict[str, Any]:
    (post,) = calls(sim, "POST")
    return post


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


# -- what Freepik receives ----------------------------------------------------------------------------------------


def test_a_local_keyframe_goes_as_bare_base64_and_the_clip_keeps_its_shape(sim, tmp_path):
    start = picture(tmp_path / "start.png", (720, 1280))
    spec = clip("kling-v2-1-std", frame(start), duration_s=10.0,
                options={"cfg_scale": 0.7, "negative_prompt": "blur"})  # fmt: skip

    made = run_job(adapter(sim), spec)

    assert made.mime == "video/mp4" and made.height > made.width  # Kling keeps the start image's 9:16
    assert made.duration_s == pytest.approx(10.0, abs=0.6)
    assert made.cost_usd == pytest.approx(FREEPIK.card("kling-v2-1-std").price.usd * 10)
    post = submitted(sim)
    assert post["path"] == f"{API}/kling-v2-1-std"
    assert post["headers"]["x-freepik-api-key"] == "…"  # the key went in Freepik's header (logged redacted)
    body = post["body"]
    assert body["image"] == b64(start)  # no data: prefix
    assert body["duration"] == "10" and body["cfg_scale"] == 0.7 and body["negative_prompt"] == "blur"
    assert "image_tail" not in body and "webhook_url" not in body
    polls = calls(sim, "GET")
    assert polls and all(r["path"].startswith(f"{API}/kling-v2-1/") for r in polls)  # std shares 2.1's path


@pytest.mark.parametrize(
    ("model", "status_path"),
    [
        ("kling-v2-1-pro", "kling-v2-1"),
        ("kling-v2-1-master", "kling-v2-1-master"),
        ("kling-v2-5-pro", "kling-v2-5-pro"),
        ("kling-v2", "kling-v2"),
        ("kling-std", "kling"),
    ],
)
def test_each_family_is_created_at_its_model_and_read_at_its_status_path(sim, model, status_path):
    made = run_job(adapter(sim, model), clip(model, frame(url=LINK)))

    assert made.mime == "video/mp4"
    post = submitted(sim)
    assert post["path"] == f"{API}/{model}" and post["body"]["image"] == LINK  # a link goes as it is
    (task,) = [j for j in sim.jobs() if j["vendor"] == "freepik"]
    task_id = task["id"]
    assert any(r["path"] == f"{API}/{status_path}/{task_id}" for r in calls(sim, "GET"))


def test_a_job_taken_up_by_another_process_is_read_at_its_own_models_path(sim):
    spec = clip("kling-v2-1-master", frame(url=LINK))
    job = adapter(sim, "kling-v2-1-master").submit(spec)
    journaled = JobRef.model_validate_json(job.model_dump_json())

    made = wait_for(adapter(sim), journaled)  # an adapter whose own model is the default, 2.1 standard

    assert made.mime == "video/mp4"
    assert all(r["path"].startswith(f"{API}/kling-v2-1-master/") for r in calls(sim, "GET"))


def test_pro_ends_on_a_last_frame_sent_as_image_tail(sim, tmp_path):
    end = picture(tmp_path / "end.jpg", (640, 360), "JPEG")
    made = run_job(
        adapter(sim, "kling-v2-1-pro"), clip("kling-v2-1-pro", frame(url=LINK), frame(end, "last_frame"))
    )

    assert made.mime == "video/mp4"
    body = submitted(sim)["body"]
    assert body["image"] == LINK and body["image_tail"] == b64(end)


def test_standard_takes_no_end_frame_and_nothing_is_sent(sim, tmp_path):
    end = picture(tmp_path / "end.png")
    error = refused(lambda: adapter(sim).submit(clip("kling-v2-1-std", frame(url=LINK), frame(end, "last_frame"))),
                    ErrorKind.invalid_input)  # fmt: skip
    assert "last_frame" in str(error)
    assert calls(sim) == []


def test_a_continuing_shot_starts_from_the_previous_clips_last_frame(sim, tmp_path):
    last = picture(tmp_path / "last.png", (360, 640))
    previous = "0f8e3c1a-2b4d-4e6f-8a9b-0c1d2e3f4a5b"
    spec = clip("kling-v2-1-std", frame(last, continues=f"freepik:{previous}"))

    made = run_job(adapter(sim), spec)

    assert (
        FREEPIK.card("kling-v2-1-std").continuity(spec) is Continuity.last_frame
    )  # Kling cannot extend a job
    assert submitted(sim)["body"]["image"] == b64(last)
    assert previous not in str(submitted(sim)["body"])
    assert made.height > made.width


# -- Kling's image rules ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "why"), [((200, 200), "at least 300 px"), ((1200, 400), "between 1:2.5 and 2.5:1")]
)
def test_a_local_image_kling_would_refuse_is_refused_before_paying(sim, tmp_path, size, why):
    start = picture(tmp_path / "start.png", size)
    error = refused(
        lambda: adapter(sim).submit(clip("kling-v2-1-std", frame(start))), ErrorKind.invalid_input
    )
    assert why in str(error)
    assert calls(sim) == []


def test_a_file_that_is_no_image_never_leaves_the_machine(sim, tmp_path):
    stray = not_an_image(tmp_path / "start.png", "keyframe")
    refused(lambda: adapter(sim).submit(clip("kling-v2-1-std", stray)), ErrorKind.invalid_input)
    assert calls(sim) == []


def test_a_webp_keyframe_is_sent_as_png(sim, tmp_path):
    start = picture(tmp_path / "start.webp", (640, 360), "WEBP")
    run_job(adapter(sim), clip("kling-v2-1-std", frame(start)))
    sent = base64.b64decode(submitted(sim)["body"]["image"])
    assert Image.open(io.BytesIO(sent)).format == "PNG"


# -- Kling Elements -----------------------------------------------------------------------------------------------


def test_elements_brings_reference_links_together_in_the_asked_aspect(sim):
    links = ("https://cdn.example.com/a.png", "https://cdn.example.com/b.png")
    spec = clip(
        "kling-elements-pro", *(frame(url=u, role="reference") for u in links), aspect=Aspect.vertical
    )

    made = run_job(adapter(sim, "kling-elements-pro"), spec)

    assert made.height > made.width
    body = submitted(sim)["body"]
    assert body["images"] == list(links) and body["aspect_ratio"] == "social_story_9_16"
    assert all(r["path"].startswith(f"{API}/kling-elements/") for r in calls(sim, "GET"))


def test_elements_says_what_to_configure_for_a_local_reference(sim, tmp_path):
    local = frame(picture(tmp_path / "ref.png"), role="reference")
    error = refused(lambda: adapter(sim, "kling-elements-std").submit(clip("kling-elements-std", local)),
                    ErrorKind.invalid_input)  # fmt: skip
    assert "CUTROOM_STORAGE=s3://" in str(error)
    assert calls(sim) == []


# -- states and errors --------------------------------------------------------------------------------------------


def test_a_task_is_pending_while_created_then_running_in_progress(sim):
    sim.configure(latency_scale=0.1)  # 2.1 standard: 12 s, the first 1.2 s CREATED
    generator = adapter(sim)
    job = generator.submit(clip("kling-v2-1-std", frame(url=LINK)))
    assert generator.poll(job).state is JobState.PENDING
    time.sleep(1.5)
    assert generator.poll(job).state is JobState.RUNNING


def test_a_duration_freepik_does_not_take_comes_back_as_its_invalid_params(sim):
    generator = adapter(sim)
    spec = clip("kling-v2-1-std", frame(url=LINK), duration_s=7.0)
    with pytest.raises(ProviderError) as caught, generator.calling("create"):
        generator.create(spec, FREEPIK.card("kling-v2-1-std"))  # the card's check left out
    assert caught.value.kind is ErrorKind.invalid_input
    assert "duration" in caught.value.detail and "HTTP 400" in caught.value.detail


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (403, {"message": "Not enough credits to perform this request"}, ErrorKind.insufficient_credits),
        (402, {"message": "Payment required"}, ErrorKind.insufficient_credits),
        (401, {"message": "Invalid API key"}, ErrorKind.auth),
        (403, {"message": "Forbidden"}, ErrorKind.auth),
        (400, {"message": "The prompt violates our content policy"}, ErrorKind.moderation_input),
        (400, {"message": "Bad", "invalid_params": [{"field": "image", "reason": "too small"}]},
         ErrorKind.invalid_input),
        (429, {"message": "Too many requests"}, ErrorKind.rate_limited),
        (503, {"message": "Service unavailable"}, ErrorKind.generation_failed),
    ],
)  # fmt: skip
def test_freepiks_error_bodies_map_to_what_the_user_must_do(status, body, kind):
    response = httpx.Response(
        status, json=body, headers={"Retry-After": "3"}, request=httpx.Request("POST", LINK)
    )
    error = FreepikVideo(api_key=KEY).from_response(response, "create")
    assert error.kind is kind, error
    assert body["message"] in error.detail
    if "invalid_params" in body:
        assert "image: too small" in error.detail
    assert error.retry_after == (3.0 if kind is ErrorKind.rate_limited else None)


def test_a_fourth_task_waits_created_until_one_of_three_ends_and_is_paid_once(sim):
    sim.configure(latency_scale=0.05)  # 2.1 standard: 6 s
    generator = adapter(sim)
    running = [generator.submit(clip("kling-v2-1-std", frame(url=LINK), seed=seed)) for seed in range(3)]
    fourth = generator.submit(clip("kling-v2-1-std", frame(url=LINK), seed=3))
    time.sleep(1.0)  # the first three are past their CREATED tenth

    assert [generator.poll(job).state for job in running] == [JobState.RUNNING] * 3
    assert generator.poll(fourth).state is JobState.PENDING
    assert wait_for(generator, fourth).mime == "video/mp4"
    assert len([j for j in sim.jobs() if j["vendor"] == "freepik"]) == 4


# -- webhooks -----------------------------------------------------------------------------------------------------


def test_with_a_callback_url_freepiks_webhook_tells_the_waiter_the_task_ended(sim):
    url = f"http://127.0.0.1:{free_port()}/freepik"
    generator = adapter(sim, callback_url=url)
    job = generator.submit(clip("kling-v2-1-std", frame(url=LINK)))

    assert submitted(sim)["body"]["webhook_url"] == url
    receiver = callbacks.listen(url, "freepik", webhook_news)
    assert receiver is not None
    with receiver.watching(job.job_id) as ended:
        assert ended.wait(10.0), "no webhook said the task ended"
    assert wait_for(generator, job).mime == "video/mp4"


def test_webhook_bodies_are_read_for_their_task_and_end_only():
    task = "0f8e3c1a-2b4d-4e6f-8a9b-0c1d2e3f4a5b"
    assert webhook_news({"task_id": task, "status": "IN_PROGRESS"}).ended is False
    assert webhook_news({"task_id": task, "status": "COMPLETED", "generated": ["https://x"]}).ended is True
    assert webhook_news({"task_id": task, "status": "FAILED"}).ended is True
    assert (
        webhook_news({"data": {"task_id": task, "status": "COMPLETED"}}) is None
    )  # not Freepik's webhook shape
    assert webhook_news({"id": task, "state": "completed"}) is None  # another vendor's
