"""The fal adapters (FLUX images, video) against simulator/fal.py over loopback: what the contract suite does not
check — the input JSON fal receives per model, sizes, lengths and aspect ratios, options, start and end frames, the
queue's late errors, moderation, cancel, re-attaching, webhooks."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import fal_client
import httpx
import pytest
from PIL import Image

from cutroom.assets import AssetKind, AssetSpec, Continuity, InputRef, Operation
from cutroom.capabilities import Capability
from cutroom.channels import SIZES, Aspect
from providers import declarations, fal, simulation
from providers.callbacks import CallbackNews
from providers.errors import ErrorKind, JobFailed
from providers.fal import FalImage, FalVideo
from providers.polling import run_job, wait_for
from providers.protocol import JobState
from providers.sizes import nearest_ratio
from simulator import fal as sim_fal
from tests.vendor_helpers import image_spec, on_simulator, refused

#: An account of its own (each key id is one in the simulator), so no other test's runs queue ahead of ours.
KEY = "5b2e9c70-1d3f-4a8e-b6c2-7f90a1d2e3c4:0123456789abcdef0123456789abcdef"
SCALE = 0.01
LINK = "https://cdn.example.com/bottle.png"
FAL = declarations.vendor("fal")


@pytest.fixture
def sim(simulator: Any) -> Iterator[Any]:
    simulator.reset(latency_scale=SCALE, latency_jitter=0)
    yield simulator
    simulator.reset()  # no faults on the control calls below
    httpx.post(f"{simulator.url}/fal/_sim/limits", json={"concurrency": 2}).raise_for_status()
    httpx.post(f"{simulator.url}/fal/_sim/billing", json={"balance_usd": 100.0}).raise_for_status()


def adapter(sim: Any, model: str | None = None, **options: Any) -> FalImage:
    return on_simulator(FalImage, sim, model, scale=SCALE, timeout=5.0, **{"api_key": KEY, **options})


def spec(model: str = "fal-ai/flux/dev", aspect: Aspect = Aspect.landscape, **changes: Any) -> AssetSpec:
    return image_spec("fal", model, "a blue bottle on wet sand at dawn", aspect, **{"seed": 42, **changes})


def png(path: Path, size: tuple[int, int] = (400, 300)) -> Path:
    Image.new("RGB", size, (30, 90, 160)).save(path)
    return path


def reference(path: Path, role: str = "reference", url: str | None = None) -> InputRef:
    return InputRef(role=role, uri=path.as_uri(), url=url, sha256="0" * 64)


def calls(sim: Any, method: str | None = None) -> list[dict[str, Any]]:
    """fal API calls in the log (control routes and media downloads left out)."""
    return [
        r
        for r in sim.requests()
        if r["vendor"] == "fal"
        and "/_sim/" not in r["path"]
        and "/_media/" not in r["path"]
        and (method is None or r["method"] == method)
    ]


def submitted(sim: Any) -> dict[str, Any]:
    (post,) = calls(sim, "POST")
    return post["body"]


# -- what fal receives ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("aspect", list(Aspect))
def test_an_image_size_model_is_asked_for_the_specs_exact_size(sim, aspect: Aspect):
    made = run_job(adapter(sim), spec(aspect=aspect))

    width, height = SIZES[aspect]
    body = submitted(sim)
    assert body == {
        "prompt": "a blue bottle on wet sand at dawn",
        "num_images": 1,
        "seed": 42,
        "image_size": {"width": width, "height": height},
        "enable_safety_checker": True,
    }
    assert (made.width, made.height, made.mime) == (width, height, "image/jpeg")
    assert made.cost_usd == pytest.approx(0.025 * width * height / 1e6, abs=1e-4)


def test_the_wire_is_the_sdks_key_header_model_path_and_request_urls(sim):
    run_job(adapter(sim), spec())

    post, *gets = calls(sim)
    assert (post["method"], post["path"]) == ("POST", "/fal/fal-ai/flux/dev")
    assert post["headers"]["authorization"] == "Key …"  # the scheme fal wants (the log hides the key)
    request_id = sim.jobs()[-1]["id"]
    root = f"/fal/fal-ai/flux/requests/{request_id}"  # the model's sub-path dropped, as fal's URLs drop it
    assert {g["path"] for g in gets} == {f"{root}/status?logs=false", root}
    assert gets[-1]["path"] == root  # the result is read once, after COMPLETED


@pytest.mark.parametrize(
    ("aspect", "size"),
    [(Aspect.landscape, (2752, 1536)), (Aspect.vertical, (1536, 2752)), (Aspect.square, (2048, 2048))],
)
def test_ultra_is_asked_for_the_specs_aspect_ratio(sim, aspect: Aspect, size: tuple[int, int]):
    made = run_job(adapter(sim, "fal-ai/flux-pro/v1.1-ultra"), spec("fal-ai/flux-pro/v1.1-ultra", aspect))

    body = submitted(sim)
    assert body["aspect_ratio"] == aspect.value and "image_size" not in body
    assert (made.width, made.height) == size
    assert made.cost_usd == pytest.approx(0.06)  # per image, whatever its size


@pytest.mark.parametrize("aspect", list(Aspect))
def test_kontext_takes_a_linked_reference_as_it_is_and_the_specs_aspect(sim, tmp_path, aspect: Aspect):
    ref = reference(png(tmp_path / "bottle.png"), url=LINK)
    made = run_job(
        adapter(sim, "fal-ai/flux-pro/kontext"), spec("fal-ai/flux-pro/kontext", aspect, inputs=(ref,))
    )

    body = submitted(sim)
    assert (body["image_url"], body["aspect_ratio"]) == (LINK, aspect.value)
    asked = SIZES[aspect][0] / SIZES[aspect][1]
    assert made.width / made.height == pytest.approx(asked, rel=0.08)


def test_kontext_sends_a_local_reference_inline_as_a_data_uri(sim, tmp_path):
    ref = reference(png(tmp_path / "bottle.png", (400, 300)))
    run_job(adapter(sim, "fal-ai/flux-pro/kontext"), spec("fal-ai/flux-pro/kontext", inputs=(ref,)))

    assert submitted(sim)["image_url"].startswith("data:image/png;base64,")


def test_kontext_modifies_a_source_image(sim, tmp_path):
    source = reference(png(tmp_path / "shot.png"), role="source", url=LINK)
    edit = spec(
        "fal-ai/flux-pro/kontext", operation=Operation.modify, inputs=(source,), prompt="make it night"
    )
    made = run_job(adapter(sim, "fal-ai/flux-pro/kontext"), edit)

    assert submitted(sim)["image_url"] == LINK and made.data


def test_a_reference_that_is_no_image_is_refused_before_any_request(sim, tmp_path):
    fake = tmp_path / "logo.png"
    fake.write_text("not an image at all")
    generator = adapter(sim, "fal-ai/flux-pro/kontext")

    ended = refused(lambda: generator.submit(spec("fal-ai/flux-pro/kontext", inputs=(reference(fake),))))

    assert ended.kind is ErrorKind.invalid_input and "not image media" in str(ended)
    assert calls(sim) == []


def test_options_reach_fal_in_its_own_names_and_types(sim):
    options = {"num_inference_steps": 12, "guidance_scale": 5.0, "acceleration": "high", "output_format": "png",
               "enable_safety_checker": False}  # fmt: skip
    made = run_job(adapter(sim), spec(options=options))

    body = submitted(sim)
    assert body | options == body  # each option as it was given, by fal's own name
    assert made.mime == "image/png"


def test_the_pro_models_get_safety_tolerance_as_the_string_fal_takes(sim):
    options = {"safety_tolerance": "5", "enhance_prompt": True}
    run_job(adapter(sim, "fal-ai/flux-pro/v1.1"), spec("fal-ai/flux-pro/v1.1", options=options))

    body = submitted(sim)
    assert (body["safety_tolerance"], body["enhance_prompt"]) == ("5", True)


def test_a_size_preset_is_sent_by_name_and_billed_at_the_size_made(sim):
    made = run_job(adapter(sim), spec(options={"image_size": "landscape_16_9"}))

    assert submitted(sim)["image_size"] == "landscape_16_9"
    assert (made.width, made.height) == (1024, 576)
    assert made.cost_usd == pytest.approx(0.025 * 1024 * 576 / 1e6, abs=1e-4)  # less than the estimate


@pytest.mark.parametrize(
    ("model", "changes", "words"),
    [
        ("fal-ai/flux/dev", {"options": {"image_size": "portrait_16_9"}}, "not the shape of 1280x720"),
        ("fal-ai/flux/schnell", {"options": {"num_inference_steps": 20}}, "up to 12"),
        ("fal-ai/flux-pro/v1.1", {"options": {"guidance_scale": 3.0}}, "option guidance_scale"),
        ("fal-ai/flux-pro/kontext", {}, "without a reference input"),
    ],
)
def test_what_a_model_cannot_take_is_refused_before_any_request(sim, model: str, changes: dict, words: str):
    ended = refused(lambda: adapter(sim, model).submit(spec(model, **changes)))

    assert ended.kind is ErrorKind.invalid_input and words in str(ended)
    assert calls(sim) == []


def test_two_images_for_the_one_image_url_are_refused(sim, tmp_path):
    refs = tuple(reference(png(tmp_path / f"{n}.png"), url=LINK) for n in range(2))
    ended = refused(
        lambda: adapter(sim, "fal-ai/flux-pro/kontext").submit(spec("fal-ai/flux-pro/kontext", inputs=refs))
    )
    assert ended.kind is ErrorKind.invalid_input and "one image input" in str(ended)


# -- what fal answers ---------------------------------------------------------------------------------------------


class StepsBeyondTheSchema(FalImage):
    """Sends what the card would refuse, to meet the queue's late validation."""

    def arguments(self, spec: AssetSpec, card: Any) -> dict[str, Any]:
        return super().arguments(spec, card) | {"num_inference_steps": 99}


def test_a_bad_input_accepted_by_the_queue_fails_late_as_invalid_input_and_is_not_resubmitted(sim):
    generator = StepsBeyondTheSchema(base_url=f"{sim.url}/fal", api_key=KEY, time_scale=SCALE, timeout=5.0)

    with pytest.raises(JobFailed) as caught:
        run_job(generator, spec())

    assert caught.value.kind is ErrorKind.invalid_input
    assert "num_inference_steps: Input should be less than or equal to 50 (less_than_equal)" in str(
        caught.value
    )
    assert len(calls(sim, "POST")) == 1


@pytest.mark.parametrize(
    ("fault", "kind"),
    [("moderation", ErrorKind.moderation_input), ("moderation_output", ErrorKind.moderation_output),
     ("failed", ErrorKind.generation_failed)],
)  # fmt: skip
def test_a_run_that_ends_badly_is_a_failed_job_of_its_kind(sim, fault: str, kind: ErrorKind):
    sim.configure(fault_rate=1.0, faults=[fault])

    with pytest.raises(JobFailed) as caught:
        run_job(adapter(sim), spec())

    assert caught.value.kind is kind
    assert not [
        r for r in sim.requests() if "/_media/" in r["path"]
    ]  # a flagged (black) image is never fetched


def test_with_the_safety_checker_off_fal_flags_nothing(sim):
    sim.configure(fault_rate=1.0, faults=["moderation_output"])
    made = run_job(adapter(sim), spec(options={"enable_safety_checker": False}))
    assert made.data and submitted(sim)["enable_safety_checker"] is False


def test_an_exhausted_balance_is_insufficient_credits(sim):
    httpx.post(f"{sim.url}/fal/_sim/billing", json={"balance_usd": 0}).raise_for_status()
    ended = refused(lambda: adapter(sim).submit(spec()))
    assert ended.kind is ErrorKind.insufficient_credits and "Exhausted balance" in str(ended)


def test_a_refused_key_is_auth_and_the_key_is_never_quoted(sim):
    secret = "5b2e9c70-1d3f-4a8e-b6c2-7f90a1d2e3c4:not-the-right-secret"
    ended = refused(lambda: adapter(sim, api_key=secret).submit(spec()))
    assert ended.kind is ErrorKind.auth and "No user found" in str(ended)
    assert "not-the-right-secret" not in str(ended)


class FailingResultReads(httpx.HTTPTransport):
    """fal's ingress failing the first read of a result (a 503 with no x-fal-request-id)."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        is_result = "/requests/" in request.url.path and not request.url.path.endswith(("/status", "/cancel"))
        if is_result and not self.failed:
            self.failed += 1
            return httpx.Response(503, text="<html>nginx</html>", request=request)
        return super().handle_request(request)


def test_a_failed_look_at_the_result_is_looked_at_again_not_a_failed_job(sim):
    transport = FailingResultReads()
    generator = adapter(sim, http_client=httpx.Client(transport=transport, timeout=5.0))

    made = run_job(generator, spec())

    assert transport.failed == 1 and made.data
    assert len(calls(sim, "POST")) == 1


def test_a_cancelled_request_ends_cancelled_and_a_finished_one_cannot_be(sim):
    sim.configure(latency_scale=1.0, latency_jitter=0)
    generator = adapter(sim)
    job = generator.submit(spec())

    assert generator.cancel(job) is True
    assert generator.poll(job).state is JobState.CANCELLED
    assert generator.cancel(job) is False  # fal: ALREADY_COMPLETED
    (put, _) = calls(sim, "PUT")
    assert put["path"] == f"/fal/fal-ai/flux/requests/{job.job_id}/cancel"


def test_a_job_re_attached_by_another_process_is_read_at_urls_rebuilt_from_its_model(sim):
    job = adapter(sim, "fal-ai/flux-pro/v1.1").submit(spec("fal-ai/flux-pro/v1.1"))
    later = adapter(
        sim
    )  # a new process, whose own model (dev) has other request URLs: the job's spec decides

    output = wait_for(later, job, first_look_s=0)

    assert output.data and output.cost_usd == pytest.approx(0.04 * 1280 * 720 / 1e6, abs=1e-4)
    assert f"/fal/fal-ai/flux-pro/requests/{job.job_id}" in {r["path"] for r in calls(sim, "GET")}


def test_urls_the_submit_answers_off_our_base_are_not_followed_with_our_key(sim):
    generator = adapter(sim)
    request_id = "764cabcf-b745-4b3e-ae38-1200304cf45b"
    foreign = {
        name: f"https://elsewhere.example/{request_id}"
        for name in ("response_url", "status_url", "cancel_url")
    }

    handle = generator._handle_from({"request_id": request_id, **foreign}, request_id, "fal-ai/flux/dev")

    assert handle.status_url == f"{sim.url}/fal/fal-ai/flux/requests/{request_id}/status"


# -- keys, URLs, the SDK -------------------------------------------------------------------------------------------


def test_the_key_may_come_as_fal_key_id_and_secret(monkeypatch):
    for name in (simulation.SIMULATOR_ENV, fal.KEY_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FAL_KEY_ID", "id-1")
    monkeypatch.setenv("FAL_KEY_SECRET", "secret-2")
    assert FalImage(base_url="http://127.0.0.1:9/fal").auth_headers()["Authorization"] == "Key id-1:secret-2"


def test_request_urls_keep_owner_and_alias_only():
    assert fal.app_path("fal-ai/flux-pro/v1.1-ultra") == "fal-ai/flux-pro"
    assert fal.app_path("workflows/me/flow/run") == "workflows/me/flow"
    assert nearest_ratio(1080 / 1080, ["16:9", "1:1"]) == "1:1"  # what fal sends as aspect_ratio


def test_the_simulator_key_in_the_declaration_is_one_the_simulator_takes():
    assert fal.NAME == sim_fal.VENDOR
    from providers import declarations

    assert declarations.vendor("fal").simulator.key == sim_fal.SIMULATOR_KEY


def test_the_sdk_still_retries_creates_and_cannot_reach_a_base_url():
    """Why this adapter is httpx (module docstring): when either fact changes, reconsider fal-client."""
    client = fal_client.client
    assert client.QUEUE_URL_FORMAT.startswith("https://") and client.RUN_URL_FORMAT.startswith("https://")
    assert client.MAX_ATTEMPTS > 1 and 429 in client.RETRY_CODES
    assert "base_url" not in fal_client.SyncClient.__dataclass_fields__


def test_a_finished_image_decodes_whole(sim):
    made = run_job(adapter(sim, "fal-ai/flux/schnell"), spec("fal-ai/flux/schnell", Aspect.square))
    Image.open(io.BytesIO(made.data)).load()
    assert (made.width, made.height) == (1080, 1080)


# -- video ---------------------------------------------------------------------------------------------------------

WAN = "fal-ai/wan/v2.2-a14b/image-to-video"
KLING = "fal-ai/kling-video/v2.1/standard/image-to-video"
KLING_PRO = "fal-ai/kling-video/v2.1/pro/image-to-video"
FLF2V = "fal-ai/wan-flf2v"
PIKA_T2V = "fal-ai/pika/v2.2/text-to-video"
CLIP_PROMPT = "waves roll onto a pebble beach"


def video(sim: Any, model: str | None = None, **options: Any) -> FalVideo:
    return on_simulator(FalVideo, sim, model, scale=SCALE, timeout=5.0, **{"api_key": KEY, **options})


def clip(model: str = WAN, aspect: Aspect | None = Aspect.vertical, **changes: Any) -> AssetSpec:
    fields: dict[str, Any] = {"kind": AssetKind.video, "provider": "fal", "model": model, "prompt": CLIP_PROMPT,
                              "duration_s": 5.0, "fps": 24, "seed": 42}  # fmt: skip
    if aspect is not None:
        fields |= {"aspect": aspect, "width": SIZES[aspect][0], "height": SIZES[aspect][1]}
    return AssetSpec(**{**fields, **changes})


def frame(role: str = "keyframe", url: str | None = LINK, **changes: Any) -> InputRef:
    return InputRef(role=role, uri="s3://bucket/frame.png", url=url, sha256="0" * 64, **changes)


def test_the_default_clip_is_wan_at_480p_in_the_specs_aspect_and_16_fps_frames(sim):
    made = run_job(video(sim), clip(inputs=(frame(),)))

    assert submitted(sim) == {
        "prompt": CLIP_PROMPT, "seed": 42, "num_frames": 81, "frames_per_second": 16, "aspect_ratio": "9:16",
        "resolution": "480p", "enable_safety_checker": True, "image_url": LINK,
    }  # fmt: skip
    assert made.mime == "video/mp4" and made.width < made.height
    assert made.width / made.height == pytest.approx(9 / 16, rel=0.08)
    assert made.duration_s == pytest.approx(5.0, abs=0.2)
    assert made.cost_usd == pytest.approx(0.04 * 5)  # $0.04 a second at 480p


def test_a_named_resolution_is_sent_and_priced(sim):
    made = run_job(video(sim), clip(inputs=(frame(),), duration_s=2.0, options={"resolution": "720p"}))

    body = submitted(sim)
    assert (body["resolution"], body["num_frames"]) == ("720p", 33)
    assert max(made.width, made.height) == 1280 and made.cost_usd == pytest.approx(0.08 * 2)


def test_kling_takes_its_duration_as_a_string_and_keeps_a_local_keyframes_shape(sim, tmp_path):
    start = reference(png(tmp_path / "start.png", (360, 640)), role="keyframe")
    made = run_job(video(sim, KLING), clip(KLING, Aspect.vertical, duration_s=10.0, inputs=(start,)))

    body = submitted(sim)
    assert body["duration"] == "10" and body["image_url"].startswith("data:image/png;base64,")
    assert "aspect_ratio" not in body and "seed" not in body  # Kling i2v has neither field
    assert made.width / made.height == pytest.approx(360 / 640, rel=0.08)
    assert made.duration_s == pytest.approx(10.0, abs=0.6)
    assert made.cost_usd == pytest.approx(0.56)


def test_kling_pro_ends_on_the_last_frame_and_standard_refuses_one_unsent(sim):
    ends = (frame(), frame("last_frame", "https://cdn.example.com/end.png"))
    run_job(video(sim, KLING_PRO), clip(KLING_PRO, inputs=ends))

    body = submitted(sim)
    assert (body["image_url"], body["tail_image_url"]) == (LINK, "https://cdn.example.com/end.png")
    ended = refused(lambda: video(sim, KLING).submit(clip(KLING, inputs=ends)), ErrorKind.invalid_input)
    assert "last_frame" in str(ended) and len(calls(sim, "POST")) == 1


KLING_T2V = "fal-ai/kling-video/v2.1/standard/text-to-video"
KLING_PRO_T2V = "fal-ai/kling-video/v2.1/pro/text-to-video"


@pytest.mark.parametrize(("model", "usd"), [(KLING_T2V, 0.28), (KLING_PRO_T2V, 0.49)])
def test_kling_2_1_standard_and_pro_make_clips_from_text_in_the_specs_aspect(sim, model: str, usd: float):
    sim.configure(latency_scale=0.001)
    generator = video(sim, model)
    job = generator.submit(clip(model, Aspect.vertical))
    while (status := generator.poll(job)).state in (JobState.PENDING, JobState.RUNNING):
        time.sleep(0.05)

    assert status.state is JobState.SUCCEEDED, status.error  # fal took the body its schema describes
    body = submitted(sim)
    assert (body["duration"], body["aspect_ratio"]) == ("5", "9:16") and "image_url" not in body
    assert FAL.card(model).price_of(clip(model)) == pytest.approx(usd)
    keyed = refused(lambda: generator.submit(clip(model, inputs=(frame(),))), ErrorKind.invalid_input)
    assert "keyframe" in str(keyed) and len(calls(sim, "POST")) == 1


def test_wan_flf2v_sends_start_and_end_frames_and_needs_both(sim):
    ends = (frame("first_frame"), frame("last_frame", "https://cdn.example.com/end.png"))
    made = run_job(video(sim, FLF2V), clip(FLF2V, inputs=ends))

    body = submitted(sim)
    assert (body["start_image_url"], body["end_image_url"]) == (LINK, "https://cdn.example.com/end.png")
    assert made.cost_usd == pytest.approx(0.2)  # per video at 480p
    ended = refused(lambda: video(sim, FLF2V).submit(clip(FLF2V, inputs=ends[:1])), ErrorKind.invalid_input)
    assert "without a last_frame input" in str(ended)


def test_pika_text_to_video_takes_an_integer_duration_its_aspect_and_resolution(sim):
    made = run_job(video(sim, PIKA_T2V), clip(PIKA_T2V, options={"resolution": "1080p"}))

    body = submitted(sim)
    assert (body["duration"], body["aspect_ratio"], body["resolution"]) == (5, "9:16", "1080p")
    assert "image_url" not in body and (made.width, made.height) == (1080, 1920)
    assert made.cost_usd == pytest.approx(0.45)


def test_a_continuing_shot_starts_from_the_previous_clips_last_frame_it_does_not_chain(sim):
    last = frame(continues="fal:764cabcf-b745-4b3e-ae38-1200304cf45b")
    spec = clip(inputs=(last,))
    generator = video(sim)

    run_job(generator, spec)

    assert submitted(sim)["image_url"] == LINK
    assert generator.card(spec).continuity(spec) is Continuity.last_frame


@pytest.mark.parametrize(
    ("model", "seconds", "words"),
    [(KLING, 7.0, "duration 5 or 10 s"), (WAN, 11.0, "17-161 frames at 16 fps (1-10 s)"),
     ("fal-ai/mochi-v1", 5.0, "5.4 s clips only")],
)  # fmt: skip
def test_a_length_the_models_field_cannot_carry_is_refused_unsent(
    sim, model: str, seconds: float, words: str
):
    generator = video(sim, model)
    spec = clip(model, None, duration_s=seconds, inputs=(frame(),) if "mochi" not in model else ())

    ended = refused(lambda: generator.create(spec, generator.card(spec)), ErrorKind.invalid_input)

    assert words in str(ended) and calls(sim) == []


def test_two_start_frames_are_refused(sim):
    ended = refused(lambda: video(sim).submit(clip(inputs=(frame(), frame("first_frame")))))
    assert ended.kind is ErrorKind.invalid_input and "starts from one image" in str(ended)


class KlingDurationAsNumber(FalVideo):
    """Sends Kling's duration as the number a careless client would, to meet the queue's late validation."""

    def arguments(self, spec: AssetSpec, card: Any) -> dict[str, Any]:
        return super().arguments(spec, card) | {"duration": 5}


def test_kling_refuses_a_numeric_duration_late_as_invalid_input(sim):
    generator = KlingDurationAsNumber(
        KLING, base_url=f"{sim.url}/fal", api_key=KEY, time_scale=SCALE, timeout=5.0
    )

    with pytest.raises(JobFailed) as caught:
        run_job(generator, clip(KLING, inputs=(frame(),)))

    assert caught.value.kind is ErrorKind.invalid_input
    assert "duration: Input should be '5' or '10' (literal_error)" in str(caught.value)


def test_a_flagged_clip_is_moderation_output_unless_the_checker_is_off(sim):
    sim.configure(fault_rate=1.0, faults=["moderation_output"])

    with pytest.raises(JobFailed) as caught:
        run_job(video(sim), clip(inputs=(frame(),)))
    assert caught.value.kind is ErrorKind.moderation_output
    assert not [r for r in sim.requests() if "/_media/" in r["path"]]  # never downloaded

    made = run_job(video(sim), clip(inputs=(frame(),), options={"enable_safety_checker": False}))
    assert made.data


def test_a_flagged_prompt_is_moderation_input(sim):
    sim.configure(fault_rate=1.0, faults=["moderation"])
    with pytest.raises(JobFailed) as caught:
        run_job(video(sim, KLING), clip(KLING, inputs=(frame(),)))
    assert caught.value.kind is ErrorKind.moderation_input


def test_every_video_card_agrees_with_its_wire_and_the_simulators_schema():
    for card in FAL.cards(Capability.video):
        wire, schema = fal.WIRES[card.model], sim_fal.VIDEO_MODELS[card.model]
        assert (
            ("last_frame" in card.inputs) == (wire.end is not None) == bool(schema.tail or schema.images[1:])
        )
        assert bool(card.inputs) == (wire.start is not None) == bool(schema.images), card.model
        assert set(card.sizes) == set(schema.resolutions), card.model
        assert wire.aspect_ratio == bool(schema.aspects) and (card.aspects or not wire.aspect_ratio), (
            card.model
        )
        assert set(card.aspects) <= set(schema.aspects or card.aspects), card.model
        for seconds in card.durations_s:  # every length the card offers, the field can carry
            FalVideo(card.model, base_url="http://127.0.0.1:9/fal", api_key=KEY)._length(seconds, card, wire)


class _Hooks(BaseHTTPRequestHandler):
    """Records webhook posts; refuses the first with a 500, so fal's retry shows."""

    posts: list[dict[str, Any]]

    def do_POST(self) -> None:
        self.posts.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
        self.send_response(500 if len(self.posts) == 1 else 200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest's output clean


@pytest.fixture
def hooks() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    posts: list[dict[str, Any]] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Hooks", (_Hooks,), {"posts": posts}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/fal-hook", posts
    server.shutdown()
    server.server_close()


def test_a_webhook_rides_on_the_submit_and_fals_post_reads_as_the_run_ended(sim, hooks):
    url, posts = hooks
    generator = video(sim, callback_url=url)
    job = generator.submit(clip(inputs=(frame(),)))
    made = wait_for(generator, job, first_look_s=0)
    deadline = time.monotonic() + 5
    while len(posts) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)

    (post,) = calls(sim, "POST")
    assert post["path"] == f"/fal/{WAN}?fal_webhook={url}"
    assert made.data and len(posts) == 2 and posts[0] == posts[1]  # the refused post was sent again
    assert posts[-1]["status"] == "OK" and posts[-1]["payload"]["video"]["url"]
    assert fal.webhook_news(posts[-1]) == CallbackNews(job_id=job.job_id, ended=True)
    assert fal.webhook_news({"id": job.job_id, "state": "completed"}) is None  # another vendor's post


def test_a_failed_runs_webhook_says_error(sim, hooks):
    url, posts = hooks
    sim.configure(fault_rate=1.0, faults=["failed"])
    generator = video(sim, callback_url=url)
    with pytest.raises(JobFailed):
        run_job(generator, clip(inputs=(frame(),)))
    deadline = time.monotonic() + 5
    while len(posts) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)

    assert posts[-1]["status"] == "ERROR" and posts[-1]["error"] == "Invalid status code: 500"
    assert fal.webhook_news(posts[-1]).ended
