"""The Replicate adapter against simulator/replicate.py over loopback HTTP: what the contract suite leaves out
(the request Replicate receives, sizes per aspect, options, references, the held create, errors)."""

from __future__ import annotations

import base64
import io
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import replicate as replicate_sdk
from PIL import Image

from cutroom.assets import AssetSpec, Continuity, InputRef, Operation
from cutroom.channels import SIZES, Aspect
from cutroom.loopback import free_port
from providers import callbacks, replicate
from providers.callbacks import CallbackNews
from providers.errors import ErrorKind, JobFailed, ProviderError
from providers.polling import run_job, wait_for
from providers.protocol import JobRef, JobState
from simulator import replicate as sim_replicate
from tests.simulator_fixture import SimulatorHandle
from tests.vendor_helpers import image_spec, not_an_image, on_simulator, refused

SCALE = 0.01
KEY = sim_replicate.SIMULATOR_KEY
SCHNELL = "black-forest-labs/flux-schnell"
DEV = "black-forest-labs/flux-dev"
PRO = "black-forest-labs/flux-1.1-pro"
ULTRA = "black-forest-labs/flux-1.1-pro-ultra"
SD35 = "stability-ai/stable-diffusion-3.5-large"
IDEOGRAM = "ideogram-ai/ideogram-v3-turbo"
RECRAFT = "recraft-ai/recraft-v3"
SDXL_VERSION = sim_replicate.BY_NAME["stability-ai/sdxl"].version
SDXL = f"stability-ai/sdxl:{SDXL_VERSION}"


@pytest.fixture
def sim(simulator: SimulatorHandle) -> SimulatorHandle:
    # Faults off first (billing sits under /replicate); each output shape rendered once, for speed.
    simulator.reset(latency_scale=SCALE, latency_jitter=0, stock_media=True)
    _balance(simulator, 100.0)
    return simulator


def _balance(sim: SimulatorHandle, usd: float) -> None:
    httpx.post(f"{sim.url}/replicate/_sim/billing", json={"balance_usd": usd}).raise_for_status()


def adapter(sim: SimulatorHandle, **options: Any) -> replicate.ReplicateImage:
    return on_simulator(replicate.ReplicateImage, sim, scale=SCALE, timeout=5.0, **options)


def mocked(handler: Any, **options: Any) -> replicate.ReplicateImage:
    """The adapter on an httpx MockTransport: answers the simulator does not give."""
    http = httpx.Client(transport=httpx.MockTransport(handler))
    return replicate.ReplicateImage(base_url="https://api.replicate.test", api_key=KEY, http_client=http,
                                    time_scale=SCALE, **options)  # fmt: skip


def spec(model: str = SCHNELL, aspect: Aspect | None = Aspect.landscape, **changes: Any) -> AssetSpec:
    return image_spec("replicate", model, "a blue bottle on white sand", aspect, **changes)


def api(sim: SimulatorHandle) -> list[dict[str, Any]]:
    """Calls to Replicate's API (the simulator's own /_sim routes and downloads left out)."""
    return [r for r in sim.requests() if "/v1/" in r["path"]]


def creates(sim: SimulatorHandle) -> list[dict[str, Any]]:
    return [r for r in sim.requests() if r["method"] == "POST" and r["path"].endswith("/predictions")]


def polls(sim: SimulatorHandle) -> list[dict[str, Any]]:
    return [r for r in sim.requests() if r["method"] == "GET" and "/v1/predictions/" in r["path"]]


def png(path: Path, size: tuple[int, int] = (640, 360), noise: bool = False) -> InputRef:
    if noise:  # random pixels do not compress: a PNG of several MB
        image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    else:
        image = Image.new("RGB", size, (30, 90, 200))
    image.save(path)
    return InputRef(role="reference", uri=path.as_uri(), sha256="0" * 64)


# -- the request -----------------------------------------------------------------------------------------------


def test_an_official_model_is_created_on_its_model_route_held_and_fetched_without_a_poll(sim):
    made = run_job(adapter(sim), spec())

    assert made.mime == "image/webp" and (made.width, made.height) == (1344, 768)
    assert made.cost_usd == pytest.approx(0.003)
    [create] = creates(sim)
    assert create["path"] == f"/replicate/v1/models/{SCHNELL}/predictions"
    assert create["headers"]["prefer"] == "wait=1"  # 2 x 1.5 s, on the simulator's clock
    assert create["headers"]["authorization"] == "Bearer …"
    assert create["body"] == {
        "input": {
            "prompt": "a blue bottle on white sand",
            "aspect_ratio": "16:9",
            "seed": 7,
            "num_outputs": 1,
        }
    }
    assert polls(sim) == []  # the held create came back with the output


def test_our_create_is_the_one_the_official_sdk_sends(sim):
    """Path, Prefer header and body shape as `replicate` 1.0.7 sends them for the same model and input."""
    generator = adapter(sim)
    generator.submit(spec())
    ours = creates(sim)[0]
    sdk = replicate_sdk.Client(api_token=KEY, base_url=f"{sim.url}/replicate")
    sdk.models.predictions.create(model=SCHNELL, input=ours["body"]["input"], wait=1)
    theirs = creates(sim)[1]
    assert (ours["path"], ours["headers"]["prefer"], ours["body"]) == (
        theirs["path"],
        theirs["headers"]["prefer"],
        theirs["body"],
    )


def test_a_pinned_community_version_goes_by_version_and_is_polled(sim):
    made = run_job(
        adapter(sim), spec(SDXL, Aspect.vertical, options={"negative_prompt": "text", "steps": 20})
    )

    assert (made.width, made.height) == (768, 1344)
    [create] = creates(sim)
    assert create["path"] == "/replicate/v1/predictions"
    assert "prefer" not in create["headers"]  # a 20 s model with a cold boot is not held
    assert create["body"]["version"] == SDXL_VERSION
    assert create["body"]["input"] == {
        "prompt": "a blue bottle on white sand",
        "width": 768,
        "height": 1344,
        "seed": 7,
        "num_outputs": 1,
        "negative_prompt": "text",
        "num_inference_steps": 20,
    }
    assert polls(sim)


@pytest.mark.parametrize("model", [SCHNELL, DEV, PRO, ULTRA, SD35, IDEOGRAM, RECRAFT, SDXL])
@pytest.mark.parametrize("aspect", list(Aspect), ids=lambda a: a.slug)
def test_each_model_is_asked_for_the_frame_of_each_of_our_aspects(model: str, aspect: Aspect):
    generator = replicate.ReplicateImage(model, base_url="http://unused.test", api_key=KEY, time_scale=1.0)
    asked = spec(model, aspect)
    sent = generator._input(asked, generator.check(asked))
    if model == SDXL:
        width, height = sent["width"], sent["height"]
        assert width / height == pytest.approx(aspect_ratio(aspect), rel=0.08)
        assert "aspect_ratio" not in sent
    else:
        assert sent["aspect_ratio"] == aspect.value


def aspect_ratio(aspect: Aspect) -> float:
    width, height = SIZES[aspect]
    return width / height


@pytest.mark.parametrize("model", [SCHNELL, RECRAFT, SDXL])
@pytest.mark.parametrize("aspect", list(Aspect), ids=lambda a: a.slug)
def test_the_image_made_has_the_aspect_asked(sim, model: str, aspect: Aspect):
    made = run_job(adapter(sim), spec(model, aspect))
    assert made.width / made.height == pytest.approx(aspect_ratio(aspect), rel=0.08)


def test_a_size_without_an_aspect_picks_the_nearest_frame_and_an_odd_one_is_refused(sim):
    generator = adapter(sim)
    wide = spec(aspect=None, width=1920, height=1080)
    assert generator._input(wide, generator.check(wide))["aspect_ratio"] == "16:9"
    banner = spec(PRO, aspect=None, width=3000, height=1000)  # 3:1: FLUX 1.1 pro's widest is 16:9
    refused(lambda: generator.submit(banner), ErrorKind.invalid_input)
    assert creates(sim) == []


def test_the_options_reach_the_model_under_its_own_input_names(sim):
    options = {"steps": 12, "guidance": 4.5, "go_fast": False, "megapixels": "0.25", "output_format": "png",
               "output_quality": 95}  # fmt: skip
    made = run_job(adapter(sim), spec(DEV, options=options))
    assert made.mime == "image/png" and (made.width, made.height) == (672, 384)  # a quarter megapixel
    sent = creates(sim)[0]["body"]["input"]
    assert {k: sent[k] for k in ("num_inference_steps", "guidance", "go_fast", "megapixels", "output_format",
                                 "output_quality")} == {**{k: v for k, v in options.items() if k != "steps"},
                                                        "num_inference_steps": 12}  # fmt: skip
    assert "steps" not in sent and "disable_safety_checker" not in sent

    run_job(adapter(sim), spec(SD35, options={"steps": 20, "cfg": 5.0}))
    assert {k: creates(sim)[1]["body"]["input"][k] for k in ("steps", "cfg")} == {"steps": 20, "cfg": 5.0}


def test_seed_zero_is_left_to_the_model_and_a_large_seed_is_brought_into_range(sim):
    generator = adapter(sim)
    for seed, sent in ((0, None), (2**31 + 5, 5), (123, 123)):
        asked = spec(IDEOGRAM, seed=seed)
        assert generator._input(asked, generator.check(asked)).get("seed") == sent


def test_recraft_prompts_are_cut_to_its_cap(sim):
    generator = adapter(sim)
    asked = spec(RECRAFT, prompt="x" * 1500, options={"style": "digital_illustration/pixel_art"})
    sent = generator._input(asked, generator.check(asked))
    assert len(sent["prompt"]) == 1000 and sent["style"] == "digital_illustration/pixel_art"


# -- images in -----------------------------------------------------------------------------------------------------


def test_a_reference_goes_as_its_link_or_else_as_a_data_uri(sim, tmp_path: Path):
    local = png(tmp_path / "ref.png")
    linked = local.model_copy(update={"url": "https://cdn.example.com/ref.png"})
    generator = adapter(sim)

    generator.submit(spec(PRO, inputs=(linked,)))
    generator.submit(spec(PRO, inputs=(local,)))
    first, second = (c["body"]["input"]["image_prompt"] for c in creates(sim))
    assert first == "https://cdn.example.com/ref.png"
    assert second.startswith("data:image/png;base64,")
    assert base64.b64decode(second.partition(",")[2]) == (tmp_path / "ref.png").read_bytes()


def test_style_references_go_as_ideograms_list(sim, tmp_path: Path):
    refs = tuple(png(tmp_path / f"s{i}.png").model_copy(update={"role": "style_reference"}) for i in range(2))
    made = run_job(adapter(sim), spec(IDEOGRAM, inputs=refs, options={"style_type": "Design"}))
    assert made.mime == "image/png"
    sent = creates(sim)[0]["body"]["input"]
    assert len(sent["style_reference_images"]) == 2 and sent["style_type"] == "Design"
    assert all(uri.startswith("data:image/png;base64,") for uri in sent["style_reference_images"])


def test_a_modify_sends_its_source_as_the_image_and_follows_its_frame(sim, tmp_path: Path):
    source = png(tmp_path / "src.png", (800, 600)).model_copy(update={"role": "source"})
    made = run_job(adapter(sim), spec(DEV, Aspect.square, operation=Operation.modify, inputs=(source,),
                                      options={"prompt_strength": 0.6}))  # fmt: skip
    assert (made.width, made.height) == (800, 608)  # cog-flux: the source's frame, sides rounded to 16
    sent = creates(sim)[0]["body"]["input"]
    assert sent["image"].startswith("data:image/png;base64,") and sent["prompt_strength"] == 0.6


def test_a_local_image_over_a_megabyte_goes_as_a_jpeg_that_fits(sim, tmp_path: Path):
    big = png(tmp_path / "big.png", (1200, 1200), noise=True)
    assert (tmp_path / "big.png").stat().st_size > replicate.DATA_URI_LIMIT
    adapter(sim).submit(spec(ULTRA, inputs=(big,)))
    uri = creates(sim)[0]["body"]["input"]["image_prompt"]
    assert uri.startswith("data:image/jpeg;base64,") and len(uri) <= replicate.DATA_URI_LIMIT
    assert Image.open(io.BytesIO(base64.b64decode(uri.partition(",")[2]))).format == "JPEG"


def test_a_reference_that_is_no_image_is_refused_before_any_request(sim, tmp_path: Path):
    ref = not_an_image(tmp_path / "ref.png")
    error = refused(lambda: adapter(sim).submit(spec(PRO, inputs=(ref,))), ErrorKind.invalid_input)
    assert "not image media" in str(error)
    assert api(sim) == []


def test_inputs_a_model_cannot_place_are_refused_before_any_request(sim, tmp_path: Path):
    one = png(tmp_path / "a.png")
    generator = adapter(sim)
    refused(
        lambda: generator.submit(spec(PRO, inputs=(one, one))), ErrorKind.invalid_input
    )  # one image_prompt
    refused(lambda: generator.submit(spec(SCHNELL, inputs=(one,))), ErrorKind.invalid_input)  # it takes none
    assert api(sim) == []


# -- states and answers --------------------------------------------------------------------------------------------


def test_a_create_held_past_its_wait_is_polled_to_the_end(sim):
    sim.configure(latency_scale=0.8)  # flux-schnell runs 1.2 s; the create is held 1 s
    made = run_job(adapter(sim, time_scale=0.3), spec())
    assert made.width == 1344
    assert polls(sim)


def test_a_running_open_weight_model_reports_progress_from_its_logs(sim):
    sim.configure(latency_scale=0.05)  # sdxl: 0.5 s starting, 0.5 s processing
    generator = adapter(sim)
    job = generator.submit(spec(SDXL))
    assert generator.poll(job).state is JobState.PENDING
    seen = []
    while (status := generator.poll(job)).state is not JobState.SUCCEEDED:
        seen.append(status)
        time.sleep(0.02)
    assert any(s.state is JobState.RUNNING and s.progress is not None and 0 < s.progress < 1 for s in seen)
    assert replicate.progress(" 57%|█████▋    | 16/28 [00:01<00:00, 9.87it/s]\n") == pytest.approx(16 / 28)


def test_a_cancelled_prediction_ends_cancelled_and_a_finished_one_is_left_alone(sim):
    sim.configure(latency_scale=0.1)
    generator = adapter(sim)
    job = generator.submit(spec(SDXL))
    generator.cancel(job)
    status = generator.poll(job)
    assert status.state is JobState.CANCELLED
    generator.cancel(job)  # 409 now: nothing to do


def answering(prediction: dict[str, Any], status: int = 200) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        code = 201 if request.method == "POST" else status
        return httpx.Response(code, json={"id": "a" * 26, **prediction})

    return handler


def job(model: str = SCHNELL) -> JobRef:
    return JobRef(provider="replicate", job_id="a" * 26, spec_key="0", spec=spec(model))


def test_aborted_is_cancelled_and_a_removed_output_is_not_found():
    assert mocked(answering({"status": "aborted"})).poll(job()).state is JobState.CANCELLED
    removed = mocked(answering({"status": "succeeded", "output": None, "data_removed": True}))
    error = refused(lambda: removed.fetch(job()), ErrorKind.not_found)
    assert "an hour" in str(error)


def test_a_held_answer_with_an_inline_output_needs_no_download(tmp_path: Path):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 36), (1, 2, 3)).save(buffer, "PNG")
    inline = f"data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}"
    generator = mocked(answering({"status": "processing", "output": [inline]}))
    submitted = generator.submit(spec())
    assert generator.poll(submitted).state is JobState.SUCCEEDED
    made = generator.fetch(submitted)
    assert (made.mime, made.width, made.height) == ("image/png", 64, 36)


def test_an_answer_that_is_no_prediction_is_transient():
    generator = mocked(lambda request: httpx.Response(200, json=["not", "a", "prediction"]))
    refused(lambda: generator.poll(job()), ErrorKind.generation_failed)


# -- errors --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ("All generated images contained NSFW content. Try running it again with a different prompt.",
         ErrorKind.moderation_output),
        ("NSFW content detected. Try running it again, or try a different prompt.", ErrorKind.moderation_output),
        (sim_replicate.E005, ErrorKind.moderation_input),
        ("cannot identify image file '/tmp/tmpab12image.bin'", ErrorKind.invalid_input),
        ("Prediction interrupted; please retry (code: PA)", None),
        ("CUDA out of memory", None),
    ],
)  # fmt: skip
def test_a_failed_predictions_error_text_is_its_kind(error: str, kind: ErrorKind | None):
    assert replicate.failure_kind(error) is kind


def test_a_partner_models_blocked_output_reads_as_a_refused_input(sim):
    """FLUX pro, Ideogram and Recraft say E005 of inputs and outputs alike: the prompt is what to change."""
    sim.configure(fault_rate=1.0, faults=["moderation_output"])
    with pytest.raises(JobFailed) as caught:
        run_job(adapter(sim), spec(PRO))
    assert caught.value.kind is ErrorKind.moderation_input and "(E005)" in str(caught.value)


def test_an_empty_balance_is_insufficient_credits(sim):
    _balance(sim, 0.0)
    error = refused(lambda: adapter(sim).submit(spec()), ErrorKind.insufficient_credits)
    assert "Insufficient credit" in str(error) and KEY not in str(error)


def test_an_unknown_model_or_version_is_invalid_input_not_a_missing_job(sim):
    generator = adapter(sim)
    card = generator.vendor.card(SCHNELL)
    for model in ("nobody/no-such-model", "stability-ai/sdxl:" + "0" * 64):
        with pytest.raises(ProviderError) as caught, generator.calling("create"):
            generator.create(spec(), card.model_copy(update={"model": model}))
        assert caught.value.kind is ErrorKind.invalid_input, caught.value


def test_a_throttled_create_waits_as_long_as_the_body_says_without_retry_after():
    def throttled(request: httpx.Request) -> httpx.Response:
        body = {"detail": "Request was throttled. Your rate limit resets in ~7s."}
        return httpx.Response(429, json=body)

    error = refused(lambda: mocked(throttled).submit(spec()), ErrorKind.rate_limited)
    assert error.retry_after == 7.0


def test_a_throttled_poll_is_reported_at_once_not_retried_inside(sim):
    """The SDK would re-send this GET up to ten times; the adapter leaves the pause to wait_for."""
    generator = adapter(sim)
    submitted = generator.submit(spec(SDXL))
    sim.configure(fault_rate=1.0, faults=["429"], retry_after_s=0.5)
    error = refused(lambda: generator.poll(submitted), ErrorKind.rate_limited)
    assert error.retry_after == 0.5
    assert len(polls(sim)) == 1


def test_a_validation_error_is_invalid_input_with_the_field_named(sim):
    generator = adapter(sim)
    body = {"input": {"prompt": "x", "aspect_ratio": "7:3"}}
    with pytest.raises(ProviderError) as caught, generator.calling("create"):
        generator.request("POST", f"/v1/models/{SCHNELL}/predictions", json=body)
    assert caught.value.kind is ErrorKind.invalid_input
    assert "Input validation failed: - input.aspect_ratio" in str(caught.value)


# -- video ---------------------------------------------------------------------------------------------------------

SEEDANCE = "bytedance/seedance-1-lite"
KLING = "kwaivgi/kling-v2.1"
MINIMAX = "minimax/video-01"
VEO = "google/veo-3-fast"
WAN = "wan-video/wan-2.2-i2v-fast"
LINK = "https://cdn.example.com/start.png"


def video(sim: SimulatorHandle, **options: Any) -> replicate.ReplicateVideo:
    return on_simulator(replicate.ReplicateVideo, sim, scale=SCALE, timeout=10.0, **options)


def clip_spec(model: str = SEEDANCE, aspect: Aspect = Aspect.vertical, **changes: Any) -> AssetSpec:
    width, height = SIZES[aspect]
    fields: dict[str, Any] = {"kind": "video", "provider": "replicate", "model": model, "prompt": "waves on a reef",
                              "aspect": aspect, "width": width, "height": height, "duration_s": 5.0, "fps": 24,
                              "seed": 7}  # fmt: skip
    return AssetSpec(**{**fields, **changes})


def frame(role: str, uri: str = LINK, **fields: Any) -> InputRef:
    return InputRef(role=role, uri=uri, sha256="0" * 64, **fields)


def test_a_seedance_clip_is_polled_not_held_and_has_the_length_and_frame_asked(sim):
    made = run_job(video(sim), clip_spec(duration_s=6.0))

    assert made.mime == "video/mp4" and (made.width, made.height) == (704, 1248)  # 720p 9:16
    assert made.duration_s == pytest.approx(6.0, abs=0.2)
    assert made.cost_usd == pytest.approx(6 * 0.036)  # the card's 720p rate: Replicate reports no cost
    [create] = creates(sim)
    assert create["path"] == f"/replicate/v1/models/{SEEDANCE}/predictions"
    assert "prefer" not in create["headers"]  # a clip takes minutes: never held
    assert create["body"] == {"input": {"prompt": "waves on a reef", "aspect_ratio": "9:16", "duration": 6,
                                        "seed": 7, "resolution": "720p"}}  # fmt: skip
    assert polls(sim)


def test_start_and_end_frames_go_where_each_model_takes_them(sim, tmp_path: Path):
    start, end = frame("keyframe"), frame("last_frame", "https://cdn.example.com/end.png")
    run_job(video(sim), clip_spec(inputs=(start, end)))
    run_job(video(sim), clip_spec(KLING, inputs=(start, end), options={"mode": "pro"}))
    run_job(video(sim), clip_spec(MINIMAX, Aspect.landscape, duration_s=6.0, inputs=(frame("first_frame"),)))
    run_job(video(sim), clip_spec(VEO, duration_s=8.0, inputs=(start,)))
    seedance, kling, minimax, veo = (c["body"]["input"] for c in creates(sim))

    assert (seedance["image"], seedance["last_frame_image"]) == (LINK, "https://cdn.example.com/end.png")
    assert kling == {
        "prompt": "waves on a reef",
        "duration": 5,
        "mode": "pro",
        "start_image": LINK,
        "end_image": "https://cdn.example.com/end.png",
    }  # fmt: skip  (no aspect_ratio, no seed)
    assert minimax == {"prompt": "waves on a reef", "first_frame_image": LINK}  # one length, one frame
    assert veo == {"prompt": "waves on a reef", "aspect_ratio": "9:16", "duration": 8, "seed": 7,
                   "image": LINK, "resolution": "720p", "generate_audio": False}  # fmt: skip


def test_wan_is_asked_for_frames_at_the_spec_s_rate(sim, tmp_path: Path):
    start = image_ref_of(tmp_path / "start.png", (360, 640))
    made = run_job(video(sim), clip_spec(WAN, inputs=(start,)))

    sent = creates(sim)[0]["body"]["input"]
    assert (sent["num_frames"], sent["frames_per_second"]) == (121, 24)
    assert sent["image"].startswith("data:image/png;base64,")  # a local start image goes inline
    assert made.duration_s == pytest.approx(5.0, abs=0.2)
    assert made.width < made.height  # Wan frames the clip as its start image is framed


def image_ref_of(path: Path, size: tuple[int, int], role: str = "keyframe") -> InputRef:
    Image.new("RGB", size, (30, 90, 200)).save(path)
    return InputRef(role=role, uri=path.as_uri(), sha256="0" * 64)


def test_a_continuing_shot_starts_from_the_last_frame_not_a_chain(sim):
    previous = frame("keyframe", continues="replicate:gm3qorzdhgbfurvjtvhg6dckhu")
    generator = video(sim)
    spec = clip_spec(inputs=(previous,))
    run_job(generator, spec)

    assert creates(sim)[0]["body"]["input"]["image"] == LINK
    assert generator.card(spec).continuity(spec) is Continuity.last_frame


def test_what_a_video_model_cannot_take_is_refused_before_any_request(sim, tmp_path: Path):
    generator = video(sim)
    start, end = frame("keyframe"), frame("last_frame")
    cases = {
        "an end frame in Kling's standard mode": clip_spec(KLING, inputs=(start, end)),
        "two start frames": clip_spec(inputs=(start, frame("first_frame"))),
        "an end frame MiniMax does not take": clip_spec(
            MINIMAX, Aspect.landscape, duration_s=6.0, inputs=(end,)
        ),  # fmt: skip
        "9:16 from MiniMax": clip_spec(MINIMAX, duration_s=6.0),
        "Kling without a start image": clip_spec(KLING),
        "Wan at 30 fps (151 frames)": clip_spec(WAN, fps=30, inputs=(start,)),
        "a length Seedance does not make": clip_spec(duration_s=13.0),
        "a local start image that is no image": clip_spec(
            inputs=(not_an_image(tmp_path / "s.png", "keyframe"),)
        ),
    }
    for case, spec in cases.items():
        error = refused(lambda spec=spec: generator.submit(spec))
        assert error.kind is ErrorKind.invalid_input, f"{case}: {error}"
    assert api(sim) == []


def test_kling_fails_an_end_frame_in_standard_mode_that_is_sent_anyway(sim):
    """Replicate's schema lets the pair through; the model refuses it when it runs: our check is what saves it."""
    generator = video(sim)
    spec = clip_spec(KLING, inputs=(frame("keyframe"), frame("last_frame")))
    job_id = generator.create(spec, generator.card(spec))
    job = JobRef(provider="replicate", job_id=job_id, spec_key=spec.key(), spec=spec)
    with pytest.raises(JobFailed, match="pro mode"):
        wait_for(generator, job)


def test_a_blocked_clip_is_a_moderated_output_and_a_failed_one_is_retried(sim):
    sim.configure(fault_rate=1.0, faults=["moderation_output"])
    with pytest.raises(JobFailed) as blocked:
        run_job(video(sim), clip_spec())
    sim.configure(fault_rate=1.0, faults=["failed"])
    with pytest.raises(JobFailed) as interrupted:
        run_job(video(sim), clip_spec(seed=8))
    assert blocked.value.kind is ErrorKind.moderation_output
    assert interrupted.value.kind is ErrorKind.generation_failed and interrupted.value.kind.transient


# -- webhooks ------------------------------------------------------------------------------------------------------

WEBHOOK_SCALE = 0.02  # Seedance's 60 s becomes 1.2 s: the safety-net look would come 0.6 s after the end


def looks_at(sim: SimulatorHandle, job_id: str | None) -> list[float]:
    return [r["time"] for r in polls(sim) if job_id and job_id in r["path"]]


def test_with_a_callback_url_a_clip_is_seen_in_one_poll_when_replicate_posts_its_end(sim, monkeypatch):
    port = free_port()
    url = f"http://127.0.0.1:{port}/cutroom/callbacks"
    monkeypatch.setenv(callbacks.URL_ENV, url)
    monkeypatch.setenv(callbacks.LISTEN_ENV, f"127.0.0.1:{port}")
    sim.configure(latency_scale=WEBHOOK_SCALE)
    generator = on_simulator(replicate.ReplicateVideo, sim, scale=WEBHOOK_SCALE, timeout=10.0)

    woken = run_job(generator, clip_spec())
    monkeypatch.delenv(callbacks.URL_ENV)
    # Its schedule expects the clip in half the time it takes: the blind first look finds it running even on a
    # loaded machine whose sleeps overrun (at 0.8 of the true latency, a 0.24 s overrun found it done).
    expecting_sooner = on_simulator(replicate.ReplicateVideo, sim, scale=WEBHOOK_SCALE / 2, timeout=10.0)
    polled = run_job(expecting_sooner, clip_spec(seed=8))

    called_back, plain = creates(sim)
    hook = {k: called_back["body"].get(k) for k in ("webhook", "webhook_events_filter")}
    assert hook == {"webhook": url, "webhook_events_filter": ["completed"]}
    assert "webhook" not in plain["body"] and "webhook_events_filter" not in plain["body"]
    [look] = looks_at(sim, woken.job_id)  # woken by the post, not by the schedule
    timing = next(j for j in sim.jobs() if j["id"] == woken.job_id)
    assert look - timing["finished"] <= 0.25 * (timing["finished"] - timing["created"])
    assert len(looks_at(sim, polled.job_id)) > 1  # without it, a blind schedule


def test_a_posted_prediction_is_read_for_its_id_and_end_only() -> None:
    made = {"id": "gm3qorzdhgbfurvjtvhg6dckhu", "status": "succeeded", "output": "https://replicate.delivery/x.mp4",
            "urls": {"get": "https://api.replicate.com/v1/predictions/gm3qorzdhgbfurvjtvhg6dckhu"}}  # fmt: skip
    news = replicate.webhook_news
    assert news(made) == CallbackNews(job_id=made["id"], ended=True)
    assert news({**made, "status": "aborted", "output": None}) == CallbackNews(job_id=made["id"], ended=True)
    assert news({**made, "status": "processing"}) == CallbackNews(job_id=made["id"], ended=False)
    assert news({"id": made["id"], "status": "succeeded", "template_id": "t"}) is None  # a Creatomate render
    assert news({"id": made["id"], "status": "Ready"}) is None  # a BFL task
    assert news([made]) is None
