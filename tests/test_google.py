"""The Google adapter (Gemini image models through `google-genai`, Imagen 4 through httpx) against the Gemini API
simulator over loopback: what the contract suite does not see — the requests Google receives, sizes, options,
references, and Google's own ways of saying no."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import types
from PIL import Image

from cutroom.assets import AssetKind, AssetSpec, Continuity, InputRef
from cutroom.channels import SIZES, Aspect
from providers import declarations
from providers.errors import ErrorKind, JobFailed
from providers.google import GoogleImage, GoogleVideo, aspect_ratio, operation_error_kind, retry_delay
from providers.polling import run_job
from providers.protocol import JobRef
from simulator import google as sim_google
from tests.simulator_fixture import SimulatorHandle
from tests.vendor_helpers import image_spec, not_an_image, on_simulator, refused

SCALE = 0.01
KEY = sim_google.SIMULATOR_KEY
GEMINI = "gemini-2.5-flash-image"
IMAGEN = "imagen-4.0-generate-001"


@pytest.fixture
def sim(simulator: SimulatorHandle) -> Iterator[SimulatorHandle]:
    # stock_media: one render per output shape serves every later job, so the suite stays fast.
    simulator.reset(latency_scale=SCALE, latency_jitter=0, stock_media=True)
    account(simulator)
    yield simulator
    simulator.reset()  # faults off, so the account route answers
    account(simulator)  # the account outlives the test: leave it as the contract suite expects it


def account(sim: SimulatorHandle, billing_enabled: bool = True, daily_quota_exhausted: bool = False) -> None:
    settings = {"billing_enabled": billing_enabled, "daily_quota_exhausted": daily_quota_exhausted}
    httpx.post(f"{sim.url}/google/_sim/account", json=settings).raise_for_status()


def adapter(sim: SimulatorHandle, model: str = GEMINI, **options: Any) -> GoogleImage:
    return on_simulator(GoogleImage, sim, model, scale=SCALE, timeout=10.0, **options)


def spec(model: str = GEMINI, aspect: Aspect | None = Aspect.landscape, **changes: Any) -> AssetSpec:
    return image_spec(
        "google", model, "a teal bottle of sparkling water on wet sand, morning light", aspect, **changes
    )


def calls(sim: SimulatorHandle) -> list[dict[str, Any]]:
    return [r for r in sim.requests() if r["vendor"] == "google" and "/models/" in r["path"]]


def image_file(tmp_path: Any, name: str, size: tuple[int, int] = (320, 180), fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (20, 140, 150)).save(buffer, format=fmt)
    (tmp_path / name).write_bytes(buffer.getvalue())
    return buffer.getvalue()


def ref(tmp_path: Any, name: str, role: str = "reference") -> InputRef:
    return InputRef(role=role, uri=(tmp_path / name).as_uri(), sha256="0" * 64)


# -- what Google receives ---------------------------------------------------------------------------------------


def test_a_gemini_image_is_one_generate_content_call_with_the_key_in_a_header(sim):
    made = run_job(adapter(sim), spec())

    (call,) = calls(sim)
    assert call["method"] == "POST"
    assert call["path"] == f"/google/v1beta/models/{GEMINI}:generateContent"  # not the SDK's default v1
    assert call["headers"]["x-goog-api-key"] == "…"  # sent (the log hides it), never as ?key=
    body = call["body"]
    assert body["generationConfig"] == {
        "responseModalities": ["IMAGE"],
        "imageConfig": {"aspectRatio": "16:9"},  # 2.5 Flash Image takes no size: none is sent
        "seed": 7,
    }
    assert body["contents"] == [{"role": "user", "parts": [{"text": spec().prompt}]}]
    assert (made.mime, made.width, made.height) == ("image/png", 1344, 768)
    assert made.cost_usd == pytest.approx(0.039)


@pytest.mark.parametrize("aspect", list(Aspect))
@pytest.mark.parametrize("model", [GEMINI, "gemini-3.1-flash-image-preview", IMAGEN])
def test_each_of_our_aspects_is_asked_by_name_and_made_in_that_shape(sim, model, aspect):
    made = run_job(adapter(sim, model), spec(model, aspect))

    (call,) = calls(sim)
    sent = call["body"]["parameters"] if model.startswith("imagen") else call["body"]["generationConfig"]
    asked = sent["aspectRatio"] if model.startswith("imagen") else sent["imageConfig"]["aspectRatio"]
    assert asked == aspect.value
    width, height = SIZES[aspect]
    assert made.width / made.height == pytest.approx(width / height, rel=0.08)


def test_a_shape_without_an_aspect_gets_the_nearest_ratio_or_a_clear_refusal():
    portrait = spec(aspect=None, width=1080, height=1350)
    assert aspect_ratio(portrait, ("1:1", "3:4", "4:5", "9:16")) == "4:5"
    assert aspect_ratio(portrait, ("1:1", "3:4", "4:3", "9:16", "16:9")) == "3:4"  # 6 % off: within 8 %
    assert aspect_ratio(spec(aspect=None), ("1:1", "16:9")) is None  # no shape asked: Google's default
    banner = spec(aspect=None, width=3000, height=1000)
    error = refused(lambda: aspect_ratio(banner, ("1:1", "3:4", "4:3", "9:16", "16:9")))
    assert error.kind is ErrorKind.invalid_input and "3000x1000" in str(error)


def test_image_size_reaches_gemini_and_prices_the_image(sim):
    pro = "gemini-3-pro-image-preview"
    made = run_job(adapter(sim, pro), spec(pro, Aspect.vertical, options={"image_size": "2K"}))

    (call,) = calls(sim)
    assert call["body"]["generationConfig"]["imageConfig"] == {"aspectRatio": "9:16", "imageSize": "2K"}
    # Gemini 3 Pro answers JPEG as well as PNG: the bytes decide.
    assert (made.mime, made.width, made.height) == ("image/jpeg", 1536, 2752)
    assert made.cost_usd == pytest.approx(0.134)


def test_an_image_size_left_out_is_sent_as_1k_and_costs_what_1k_costs(sim):
    flash = "gemini-3.1-flash-image-preview"
    generator = adapter(sim, flash)
    made = run_job(generator, spec(flash, Aspect.square))

    (call,) = calls(sim)
    assert call["body"]["generationConfig"]["imageConfig"]["imageSize"] == "1K"
    assert made.cost_usd == pytest.approx(0.067)
    assert generator.estimate(spec(flash)) == pytest.approx(0.067)  # budgets reserve what the default costs
    assert generator.estimate(spec(flash, options={"image_size": "4K"})) == pytest.approx(0.151)


def test_imagen_asks_for_one_image_with_its_options_and_nothing_the_gemini_api_refuses(sim):
    options = {"image_size": "2K", "person_generation": "dont_allow", "safety_setting": "block_only_high"}
    made = run_job(adapter(sim, IMAGEN), spec(IMAGEN, Aspect.vertical, options=options))

    (call,) = calls(sim)
    assert call["path"] == f"/google/v1beta/models/{IMAGEN}:predict"
    assert call["headers"]["x-goog-api-key"] == "…"
    assert call["body"] == {
        "instances": [{"prompt": spec().prompt}],
        "parameters": {
            "sampleCount": 1,  # Imagen's default is 4, billed as four
            "includeRaiReason": True,
            "aspectRatio": "9:16",
            "sampleImageSize": "2K",
            "personGeneration": "dont_allow",
            "safetySetting": "block_only_high",
        },
    }
    assert (made.mime, made.width, made.height) == ("image/png", 1536, 2816)
    assert made.cost_usd == pytest.approx(0.04)


def test_imagen_fast_sends_no_size_and_its_card_refuses_one(sim):
    fast = "imagen-4.0-fast-generate-001"
    run_job(adapter(sim, fast), spec(fast, Aspect.square))
    assert "sampleImageSize" not in calls(sim)[0]["body"]["parameters"]

    error = refused(lambda: adapter(sim, fast).submit(spec(fast, options={"image_size": "2K"})))
    assert error.kind is ErrorKind.invalid_input and "image_size" in str(error)
    assert len(calls(sim)) == 1


def test_a_long_imagen_prompt_is_cut_to_what_imagen_reads(sim):
    run_job(adapter(sim, IMAGEN), spec(IMAGEN, prompt="sea " * 1000))
    assert len(calls(sim)[0]["body"]["instances"][0]["prompt"]) == 1900


# -- references -------------------------------------------------------------------------------------------------


def test_references_go_inline_each_after_a_line_saying_what_it_is_for(sim, tmp_path):
    png = image_file(tmp_path, "look.png")
    jpeg = image_file(tmp_path, "hero.png", fmt="JPEG")  # named .png, is a JPEG: the bytes decide
    inputs = (ref(tmp_path, "look.png", "style_reference"), ref(tmp_path, "hero.png", "character_reference"))
    run_job(adapter(sim), spec(inputs=inputs))

    parts = calls(sim)[0]["body"]["contents"][0]["parts"]  # the SDK sends web-safe base64
    assert parts[0] == {"text": spec().prompt}
    assert parts[1]["text"].startswith("Image 1 is a style reference")
    assert parts[2]["inlineData"] == {
        "data": base64.urlsafe_b64encode(png).decode(),
        "mime_type": "image/png",
    }
    assert parts[3]["text"].startswith("Image 2 is a character reference")
    assert parts[4]["inlineData"] == {
        "data": base64.urlsafe_b64encode(jpeg).decode(),
        "mime_type": "image/jpeg",
    }


def test_a_gif_reference_goes_as_png(sim, tmp_path):
    image_file(tmp_path, "logo.gif", fmt="GIF")
    run_job(adapter(sim), spec(inputs=(ref(tmp_path, "logo.gif"),)))
    blob = calls(sim)[0]["body"]["contents"][0]["parts"][2]["inlineData"]
    assert blob["mime_type"] == "image/png"
    assert base64.urlsafe_b64decode(blob["data"]).startswith(b"\x89PNG")


def test_an_edit_sends_its_source_and_keeps_its_shape(sim, tmp_path):
    image_file(tmp_path, "shot.png", size=(640, 360))
    source = ref(tmp_path, "shot.png", "source")
    made = run_job(
        adapter(sim), spec(aspect=None, prompt="make it night time", operation="modify", inputs=(source,))
    )

    body = calls(sim)[0]["body"]
    assert "imageConfig" not in body["generationConfig"]  # no ratio: Google keeps the source's
    assert body["contents"][0]["parts"][1] == {"text": "Image 1 is the image to edit."}
    assert (made.width, made.height) == (1344, 768)  # 16:9, as the source


def test_inputs_google_cannot_take_are_refused_before_any_request(sim, tmp_path):
    (tmp_path / "notes.png").write_text("not an image at all")
    cases = {
        "text named .png": spec(inputs=(ref(tmp_path, "notes.png"),)),
        "a link only": spec(
            inputs=(InputRef(role="reference", uri="https://cdn.example.com/a.png", sha256="0"),)
        ),
        "a reference to Imagen": spec(IMAGEN, inputs=(ref(tmp_path, "notes.png"),)),
        "fifteen references": spec(inputs=(ref(tmp_path, "notes.png"),) * 15),
        "no prompt": spec(prompt="  "),
    }
    for case, asked in cases.items():
        error = refused(lambda asked=asked: adapter(sim, asked.model).submit(asked))
        assert error.kind is ErrorKind.invalid_input, f"{case}: {error}"
    assert calls(sim) == []


# -- Google's ways of saying no -----------------------------------------------------------------------------------


def sent_anyway(generator: GoogleImage, asked: AssetSpec, model: str) -> Any:
    """The paid call for a model the card would refuse (its card copied under the refused name)."""
    card = generator.vendor.card(asked.model).model_copy(update={"model": model, "retired": None})
    with generator.calling("generate"):
        return generator.generate(asked, card)


@pytest.mark.parametrize("model", [GEMINI, IMAGEN])
def test_a_project_without_billing_is_out_of_credits_not_rate_limited(sim, model):
    account(
        sim, billing_enabled=False
    )  # Gemini: 429 with limit 0; Imagen: 400 "only accessible to billed users"
    error = refused(lambda: adapter(sim, model).submit(spec(model)))
    assert error.kind is ErrorKind.insufficient_credits and not error.kind.transient, str(error)


def test_the_days_quota_gone_is_not_a_retry_soon_rate_limit(sim):
    account(sim, daily_quota_exhausted=True)
    error = refused(lambda: adapter(sim).submit(spec()))
    assert error.kind is ErrorKind.insufficient_credits, str(error)


@pytest.mark.parametrize("model", [GEMINI, IMAGEN])
def test_a_rate_limit_waits_the_delay_google_puts_in_the_body(sim, model):
    sim.configure(fault_rate=1.0, faults=["429"], retry_after_s=1.5)
    error = refused(lambda: adapter(sim, model).submit(spec(model)))
    assert error.kind is ErrorKind.rate_limited and error.retry_after == pytest.approx(1.5)
    assert len(calls(sim)) == 1  # the SDK's own retries are off: a retried call is a second paid image


@pytest.mark.parametrize(("model", "retired"), [(GEMINI, "gemini-2.5-flash-image-preview"),
                                                 (IMAGEN, "imagen-3.0-generate-002")])  # fmt: skip
def test_a_model_google_no_longer_serves_is_invalid_input(sim, model, retired):
    error = refused(lambda: sent_anyway(adapter(sim, model), spec(model), retired))
    assert error.kind is ErrorKind.invalid_input and "HTTP 404" in str(error), str(error)
    assert "does not serve this model" in str(error)


@pytest.mark.parametrize(("fault", "kind"), [("moderation", ErrorKind.moderation_input),
                                             ("moderation_output", ErrorKind.moderation_output),
                                             ("failed", ErrorKind.generation_failed)])  # fmt: skip
def test_imagen_refusals_and_failures_are_the_right_kind(sim, fault, kind):
    sim.configure(fault_rate=1.0, faults=[fault])
    error = refused(lambda: adapter(sim, IMAGEN).submit(spec(IMAGEN)))
    assert error.kind is kind, str(error)
    if fault == "moderation_output":  # includeRaiReason: Google's reason reaches the message
        assert isinstance(error, JobFailed) and "filtered out 1 generated images" in str(error)


def test_a_refused_key_is_auth_and_never_quoted(sim):
    bad = "AIza-not-a-valid-key"
    error = refused(lambda: adapter(sim, api_key=bad).submit(spec()))
    assert error.kind is ErrorKind.auth and bad not in str(error)
    error = refused(lambda: adapter(sim, IMAGEN, api_key=bad).submit(spec(IMAGEN)))
    assert error.kind is ErrorKind.auth and bad not in str(error)


def test_the_sdk_runs_on_the_adapters_own_http_client(sim):
    sent: list[str] = []
    http = httpx.Client(event_hooks={"request": [lambda request: sent.append(request.url.path)]})
    generator = adapter(sim, http_client=http)
    for n in range(2):  # the same genai.Client twice: nothing closed it in between
        run_job(generator, spec(seed=n))
    assert sent == [f"/google/v1beta/models/{GEMINI}:generateContent"] * 2


# -- answers without an image ---------------------------------------------------------------------------------------


def answer(**fields: Any) -> types.GenerateContentResponse:
    return types.GenerateContentResponse.model_validate(fields)


def candidate(finish: str, *parts: dict[str, Any]) -> dict[str, Any]:
    return {"finish_reason": finish, "content": {"role": "model", "parts": list(parts)} if parts else None}


PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({"prompt_feedback": {"block_reason": "PROHIBITED_CONTENT"}}, ErrorKind.moderation_input),
        ({"prompt_feedback": {"block_reason": "IMAGE_SAFETY"}}, ErrorKind.moderation_input),
        ({"candidates": [candidate("IMAGE_SAFETY")]}, ErrorKind.moderation_output),
        ({"candidates": [candidate("IMAGE_RECITATION")]}, ErrorKind.moderation_output),
        ({"candidates": [candidate("IMAGE_OTHER")]}, ErrorKind.generation_failed),
        ({"candidates": [candidate("NO_IMAGE")]}, ErrorKind.generation_failed),
        (
            {"candidates": [candidate("STOP", {"text": "I can only describe it."})]},
            ErrorKind.generation_failed,
        ),
        ({"candidates": []}, ErrorKind.generation_failed),
    ],
)
def test_a_200_without_an_image_says_why(fields, kind):
    error = refused(lambda: GoogleImage(GEMINI, api_key=KEY)._image_of(answer(**fields)))
    assert isinstance(error, JobFailed) and error.kind is kind, str(error)


def test_the_image_is_the_part_that_is_no_thought():
    thought = {"inline_data": {"data": b"draft", "mime_type": "image/png"}, "thought": True}
    final = {"inline_data": {"data": PNG, "mime_type": "image/png"}}
    reply = answer(candidates=[candidate("STOP", {"text": "Here it is"}, thought, final)])
    assert GoogleImage(GEMINI, api_key=KEY)._image_of(reply) == (PNG, "image/png")


def test_googles_error_bodies_map_onto_the_taxonomy():
    kind = GoogleImage(GEMINI, api_key=KEY).error_kind

    def body(message: str, *details: dict[str, Any]) -> dict[str, Any]:
        return {"error": {"message": message, "details": list(details)}}

    per_day = {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
               "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel"}]}  # fmt: skip
    per_minute = {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                  "violations": [{"quotaId": "GenerateRequestsPerMinutePerProjectPerModel"}]}  # fmt: skip
    location = "User location is not supported for the API use."
    no_billing = "You exceeded your current quota … " + "x" * 300 + " limit: 0, model: gemini-2.5-flash-image"
    assert kind(429, no_billing[:300], body(no_billing)) is ErrorKind.insufficient_credits  # read whole
    assert kind(429, "quota", body("quota", per_day)) is ErrorKind.insufficient_credits
    assert kind(429, "quota", body("quota", per_minute)) is ErrorKind.rate_limited
    assert kind(400, location, body(location)) is ErrorKind.auth
    assert kind(403, "Method doesn't allow unregistered callers", {}) is None  # a 403 is auth already
    assert kind(400, sim_google.PROMPT_REFUSED, body(sim_google.PROMPT_REFUSED)) is ErrorKind.moderation_input
    assert kind(400, "Unsupported MIME type: image/bmp", {}) is None  # plain invalid_input
    assert retry_delay(body("slow down", {"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                          "retryDelay": "37s"})) == 37.0  # fmt: skip
    assert retry_delay(body("slow down")) is None


def test_the_finished_image_is_looked_at_at_once(sim):
    """Sync: the image is here when submit returns, so the first look waits for nothing (not the card's 25 s)."""
    schedule = adapter(sim, "gemini-3-pro-image-preview", time_scale=1.0).schedule_of(
        "gemini-3-pro-image-preview"
    )
    assert schedule.first() == 0.0


def test_a_genai_client_handed_in_on_its_own_transport_maps_errors_the_same(sim):
    """google-genai's default backend is httpx2, whose responses and exceptions are not httpx's."""

    def handed_in(key: str) -> GoogleImage:
        options = types.HttpOptions(base_url=sim.url + "/google", api_version="v1beta", timeout=10_000,
                                    retry_options=types.HttpRetryOptions(attempts=1))  # fmt: skip
        return adapter(sim, client=genai.Client(api_key=key, http_options=options))

    assert refused(lambda: handed_in("not-a-key").submit(spec())).kind is ErrorKind.auth
    sim.configure(fault_rate=1.0, faults=["429"], retry_after_s=2)
    error = refused(lambda: handed_in(KEY).submit(spec()))
    assert error.kind is ErrorKind.rate_limited and error.retry_after == 2.0
    sim.configure(faults=["reset"])
    assert refused(lambda: handed_in(KEY).submit(spec())).kind is ErrorKind.generation_failed


# -- Veo ------------------------------------------------------------------------------------------------------------

VEO = "veo-3.1-fast-generate-preview"
VEO_FULL = "veo-3.1-generate-preview"
VEO_2 = "veo-2.0-generate-001"


def video_adapter(sim: SimulatorHandle, model: str = VEO, **options: Any) -> GoogleVideo:
    return on_simulator(GoogleVideo, sim, model, scale=SCALE, timeout=10.0, **options)


def clip_spec(model: str = VEO, aspect: Aspect = Aspect.vertical, **changes: Any) -> AssetSpec:
    fields: dict[str, Any] = {"kind": AssetKind.video, "provider": "google", "model": model,
                              "prompt": "waves roll onto a pebble beach", "aspect": aspect,
                              "width": SIZES[aspect][0], "height": SIZES[aspect][1], "duration_s": 4.0, "fps": 24}  # fmt: skip
    return AssetSpec(**{**fields, **changes})


def veo_creates(sim: SimulatorHandle) -> list[dict[str, Any]]:
    return [r for r in calls(sim) if r["path"].endswith(":predictLongRunning")]


def test_a_clip_from_start_and_end_frames_is_one_operation_with_both_images_inline(sim, tmp_path):
    first, last = image_file(tmp_path, "first.png", (720, 1280)), image_file(tmp_path, "last.jpg", fmt="JPEG")
    asked = clip_spec(
        inputs=(ref(tmp_path, "first.png", "keyframe"), ref(tmp_path, "last.jpg", "last_frame"))
    )
    generator = video_adapter(sim)
    job = generator.submit(asked)
    made = run_job(generator, asked)

    assert re.fullmatch(rf"models/{VEO}/operations/[0-9a-z]+", job.job_id)  # the operation is the job
    body = veo_creates(sim)[0]["body"]
    instance = body["instances"][0]
    assert instance["prompt"] == asked.prompt
    assert base64.b64decode(instance["image"]["bytesBase64Encoded"]) == first
    assert instance["image"]["mimeType"] == "image/png"
    assert instance["lastFrame"] == {
        "bytesBase64Encoded": base64.b64encode(last).decode(),
        "mimeType": "image/jpeg",
    }
    assert body["parameters"] == {"aspectRatio": "9:16", "durationSeconds": 4, "resolution": "720p"}
    assert made.mime == "video/mp4" and (made.width, made.height) == (720, 1280)
    assert made.duration_s == pytest.approx(4.0, abs=0.3)
    assert made.cost_usd == pytest.approx(4 * 0.15)


def test_the_operation_is_polled_and_the_video_fetched_with_the_key_but_the_signed_link_without(sim):
    run_job(video_adapter(sim), clip_spec(duration_s=6.0))
    asked = [r for r in sim.requests() if r["vendor"] == "google" and "/_sim/" not in r["path"]]
    create, *polls, download, media = asked
    assert create["method"] == "POST" and create["headers"]["x-goog-api-key"] == "…"
    name = f"/google/v1beta/models/{VEO}/operations/"
    assert polls and all(p["method"] == "GET" and p["path"].startswith(name) for p in polls)
    assert re.fullmatch(r"/google/v1beta/files/[0-9a-z]+:download\?alt=media", download["path"])
    assert download["status"] == 302 and download["headers"]["x-goog-api-key"] == "…"
    assert media["path"].startswith("/google/_media/") and "x-goog-api-key" not in media["headers"]


def test_veo_2_makes_its_one_resolution_without_being_told(sim):
    made = run_job(video_adapter(sim, VEO_2), clip_spec(VEO_2, Aspect.landscape, duration_s=5.0))
    assert veo_creates(sim)[0]["body"]["parameters"] == {"aspectRatio": "16:9", "durationSeconds": 5}
    assert (made.width, made.height) == (1280, 720)


def test_reference_images_go_as_assets_on_veo_3_1(sim, tmp_path):
    image_file(tmp_path, "a.png")
    image_file(tmp_path, "b.png")
    refs = (ref(tmp_path, "a.png"), ref(tmp_path, "b.png"))
    run_job(video_adapter(sim, VEO_FULL), clip_spec(VEO_FULL, duration_s=8.0, inputs=refs))
    instance = veo_creates(sim)[0]["body"]["instances"][0]
    assert [r["referenceType"] for r in instance["referenceImages"]] == ["asset", "asset"]
    assert "image" not in instance and "lastFrame" not in instance


def test_a_continuing_shot_starts_from_the_previous_clips_last_frame(sim, tmp_path):
    frame = image_file(tmp_path, "last-frame.png", (720, 1280))
    previous = f"google:models/{VEO}/operations/abc123def456"
    start = ref(tmp_path, "last-frame.png", "keyframe").model_copy(update={"continues": previous})
    asked = clip_spec(inputs=(start,))
    assert video_adapter(sim).card(asked).continuity(asked) is Continuity.last_frame
    run_job(video_adapter(sim), asked)
    instance = veo_creates(sim)[0]["body"]["instances"][0]
    assert base64.b64decode(instance["image"]["bytesBase64Encoded"]) == frame
    assert "video" not in instance  # Veo's extension answers the whole video, 7 s longer: not a clip of ours


def test_inputs_and_lengths_veo_cannot_take_are_refused_before_any_request(sim, tmp_path):
    image_file(tmp_path, "p.png")
    start, end = ref(tmp_path, "p.png", "keyframe"), ref(tmp_path, "p.png", "last_frame")
    reference = ref(tmp_path, "p.png")
    cases = {
        "an end frame alone": (VEO, {"inputs": (end,)}),
        "two start frames": (VEO, {"inputs": (start, start.model_copy(update={"role": "first_frame"}))}),
        "references with frames": (VEO_FULL, {"inputs": (start, reference), "duration_s": 8.0}),
        "four references": (VEO_FULL, {"inputs": (reference,) * 4, "duration_s": 8.0}),
        "references on a short clip": (VEO_FULL, {"inputs": (reference,), "duration_s": 4.0}),
        "references on a model without them": (VEO, {"inputs": (reference,), "duration_s": 8.0}),
        "an end frame on Veo 3": ("veo-3.0-generate-001", {"inputs": (start, end), "duration_s": 8.0}),
        "1080p on a short clip": (VEO, {"options": {"resolution": "1080p"}, "duration_s": 6.0}),
        "1080p on Veo 2": (VEO_2, {"options": {"resolution": "1080p"}, "duration_s": 5.0}),
        "a square clip": (VEO, {"aspect": Aspect.square}),
        "no prompt and no image": (VEO, {"prompt": " "}),
        "a start image that is no image": (VEO, {"inputs": (not_an_image(tmp_path / "x.png", "keyframe"),)}),
    }
    for case, (model, changes) in cases.items():
        error = refused(
            lambda model=model, changes=changes: video_adapter(sim, model).submit(clip_spec(model, **changes))
        )
        assert error.kind is ErrorKind.invalid_input, f"{case}: {error}"
    assert calls(sim) == []


def test_google_refuses_what_the_check_would_have_refused(sim):
    """The simulator keeps Google's rules too: 1080p at 4 s, sent past the adapter's check, is a 400
    (invalid_input)."""
    generator = video_adapter(sim)
    asked = clip_spec(options={"resolution": "1080p"})
    error = refused(lambda: _sent(generator, asked))
    assert error.kind is ErrorKind.invalid_input and "durationSeconds must be 8" in str(error)


def _sent(generator: GoogleVideo, asked: AssetSpec) -> str:
    """The paid call without the checks before it."""
    with generator.calling("create"):
        return generator.create(asked, generator.card(asked))


def test_an_operation_google_no_longer_keeps_is_not_found_not_a_bad_model(sim):
    job = JobRef(provider="google", job_id=f"models/{VEO}/operations/zzz999", spec_key="0")
    assert refused(lambda: video_adapter(sim).poll(job)).kind is ErrorKind.not_found


@pytest.mark.parametrize(
    ("fault", "kind", "words"),
    [("moderation", ErrorKind.moderation_input, "refused the prompt"),
     ("moderation_output", ErrorKind.moderation_output, "withheld the clip"),
     ("failed", ErrorKind.generation_failed, "Veo failed (13)")],
)  # fmt: skip
def test_a_done_operation_without_a_video_says_why(sim, fault, kind, words):
    sim.configure(fault_rate=1.0, faults=[fault])
    error = refused(lambda: run_job(video_adapter(sim), clip_spec()))
    assert isinstance(error, JobFailed) and error.kind is kind and words in str(error), str(error)


def test_a_failed_operations_code_says_whose_fault_it_was():
    assert operation_error_kind(3, "Invalid argument: durationSeconds") is ErrorKind.invalid_input
    assert operation_error_kind(13, "Internal error") is ErrorKind.generation_failed
    assert operation_error_kind(3, sim_google.PROMPT_REFUSED) is ErrorKind.moderation_input
    assert operation_error_kind(None, "") is ErrorKind.generation_failed


def test_a_job_id_is_an_operation_name_and_nothing_else():
    vendor = declarations.vendor("google")
    assert vendor.checks_job_id(f"models/{VEO}/operations/abc123")
    for bad in (f"models/{VEO}/operations/../../x", "models/veo-../operations/a", "operations/abc",
                f"models/{VEO}/operations/a?key=1", "models/gemini-2.5-flash-image/operations/a"):  # fmt: skip
        assert refused(lambda bad=bad: vendor.checks_job_id(bad)).kind is ErrorKind.invalid_input
