"""The Leonardo.ai adapter (plain httpx) against simulator/leonardo.py over loopback: what the contract suite does
not see — the createGeneration body Leonardo receives, sizes per aspect and model, options, the init-image upload
flow, and Leonardo's own answers (a 500 for a bad key, 200 null for a missing generation, nsfw flags, tokens); and
video: the motion body per model family, start frames uploaded or GENERATED, end frames, the clip's link."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from cutroom.assets import AssetKind, AssetSpec, InputRef
from cutroom.capabilities import Capability
from cutroom.channels import SIZES, Aspect
from providers import declarations
from providers.cards import ModelCard
from providers.errors import ErrorKind, JobFailed, ProviderError
from providers.leonardo import LeonardoImage, LeonardoVideo, _dollars, fit_size, model_of
from providers.polling import run_job, wait_for
from providers.protocol import JobRef
from simulator import leonardo as simulated
from tests.vendor_helpers import image_ref, image_spec, not_an_image, on_simulator, refused

SCALE = 0.01
LEONARDO = declarations.vendor("leonardo")
KEY = LEONARDO.simulator.key  # type: ignore[union-attr]


@pytest.fixture
def sim(simulator: Any) -> Iterator[Any]:
    simulator.reset(latency_scale=SCALE, latency_jitter=0.0)  # also restores the account's limits
    yield simulator


def _adapter(sim: Any, model: str | None = None, **options: Any) -> LeonardoImage:
    return on_simulator(LeonardoImage, sim, model, scale=SCALE, timeout=5.0, **options)


def _spec(model: str = "phoenix-1.0", aspect: Aspect = Aspect.landscape, **changes: Any) -> AssetSpec:
    return image_spec("leonardo", model, "a blue bottle on sand", aspect, **changes)


def _calls(sim: Any, path: str = "/generations", method: str = "POST") -> list[dict[str, Any]]:
    return [r for r in sim.requests() if r["vendor"] == "leonardo" and r["method"] == method
            and r["path"].endswith(path)]  # fmt: skip


def _limits(sim: Any, **values: Any) -> None:
    httpx.post(f"{sim.url}/leonardo/_sim/limits", json=values).raise_for_status()


# -- the request ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("aspect", list(Aspect), ids=lambda a: a.value)
def test_each_aspect_is_sent_at_its_exact_size_as_one_image(sim, aspect: Aspect) -> None:
    spec = _spec(aspect=aspect)
    made = run_job(_adapter(sim), spec)
    body = _calls(sim)[0]["body"]
    assert (body["width"], body["height"]) == (made.width, made.height) == SIZES[aspect]
    assert body == {
        "prompt": "a blue bottle on sand",
        "modelId": LEONARDO.card("phoenix-1.0").vendor_id,
        "width": SIZES[aspect][0],
        "height": SIZES[aspect][1],
        "num_images": 1,  # Leonardo's default is four paid images
        "seed": 7,
        "contrast": 3.5,  # required by Phoenix: the card's default
        "alchemy": False,  # fast mode unless asked: the price the card states
    }
    # Leonardo reported credits, which have no fixed dollar value: the card's price is booked.
    assert made.cost_usd == pytest.approx(_adapter(sim).estimate(spec)) and made.cost_usd > 0


def test_sizes_are_fitted_on_the_8_pixel_grid_within_each_model_s_longest_side() -> None:
    assert fit_size(1920, 1080, 1536) == (1536, 864)
    assert fit_size(1920, 1080, 2048) == (1920, 1080)  # Lucid
    assert fit_size(1001, 1001, 1536) == (1000, 1000)
    assert fit_size(20, 40, 1536) == (32, 64)


def test_a_big_spec_on_lucid_keeps_its_size_and_on_phoenix_is_scaled(sim) -> None:
    run_job(_adapter(sim, "lucid-origin"), _spec("lucid-origin", width=1920, height=1080))
    run_job(_adapter(sim), _spec(width=1920, height=1080))
    sizes = [(c["body"]["width"], c["body"]["height"]) for c in _calls(sim)]
    assert sizes == [(1920, 1080), (1536, 864)]


def test_options_reach_leonardo_by_its_own_names(sim) -> None:
    options = {"alchemy": True, "contrast": 4.0, "presetStyle": "CINEMATIC", "negative_prompt": "text, blur"}
    spec = _spec(options=options)
    made = run_job(_adapter(sim), spec)
    assert options.items() <= _calls(sim)[0]["body"].items()
    # Quality mode doubles the estimate (and the credits Leonardo charges).
    assert made.cost_usd == pytest.approx(2 * _adapter(sim).estimate(_spec()), rel=0.01)


def test_ultra_and_flux_seeds(sim) -> None:
    run_job(_adapter(sim, "lucid-realism"), _spec("lucid-realism", options={"ultra": True}))
    run_job(_adapter(sim, "flux-schnell"), _spec("flux-schnell", seed=3_000_000_000))
    lucid, flux = (c["body"] for c in _calls(sim))
    assert (
        lucid["ultra"] is True
        and "alchemy" not in lucid
        and lucid["modelId"] == LEONARDO.card("lucid-realism").vendor_id
    )
    assert flux["seed"] == 3_000_000_000 % 2_147_483_638  # Flux seeds stop at 2147483637
    assert "presetStyle" not in flux and flux["contrast"] == 3.5


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"alchemy": True, "ultra": True}, "alchemy and ultra"),
        ({"alchemy": True, "contrast": 1.8}, "needs 2.5"),
        ({"init_strength": 0.5}, "init_strength without a reference"),
    ],
)
def test_combinations_leonardo_refuses_are_refused_before_any_request(sim, options, needle) -> None:
    error = refused(lambda: _adapter(sim).submit(_spec(options=options)), ErrorKind.invalid_input)
    assert needle in str(error)
    assert [r for r in sim.requests() if r["vendor"] == "leonardo"] == []


def test_a_model_is_named_readably_or_by_its_uuid() -> None:
    def card(model: str, vendor_id: str | None = None) -> ModelCard:
        return ModelCard(provider="leonardo", model=model, vendor_id=vendor_id, capability=Capability.image)

    phoenix = "de7d3faf-762f-48e0-b3b7-9d0ac3a3fcf3"
    assert model_of(LEONARDO.card("phoenix-1.0")).id == phoenix
    assert model_of(card("my-phoenix", phoenix)).id == phoenix
    assert model_of(card("05ce0082-2d80-4a2d-8653-4d1c85e2418e")).id == "05ce0082-2d80-4a2d-8653-4d1c85e2418e"
    refused(lambda: model_of(card("phoenix-2")), ErrorKind.invalid_input)
    declared = LEONARDO.cards(Capability.image)
    assert all(c.vendor_id for c in declared) and {c.vendor_id for c in declared} <= set(simulated.MODELS)


def test_a_model_leonardo_does_not_know_is_invalid_input(sim) -> None:
    generator = _adapter(sim)
    card = generator.check(_spec()).model_copy(
        update={"model": "00000000-0000-4000-8000-000000000000", "vendor_id": None}
    )

    def sent() -> str:
        with generator.calling("create"):
            return generator.create(_spec(), card)

    assert "not found" in str(refused(sent, ErrorKind.invalid_input))


# -- references: the init-image upload flow ---------------------------------------------------------------------------


def test_a_reference_is_uploaded_as_the_init_image_once_and_without_our_key(sim, tmp_path: Path) -> None:
    ref = image_ref(tmp_path / "ref.jpg", fmt="JPEG")
    generator = _adapter(sim)
    spec = _spec(inputs=(ref,), options={"init_strength": 0.4})
    run_job(generator, spec)
    run_job(generator, spec.model_copy(update={"seed": 8}))
    uploads, stored = _calls(sim, "/init-image"), _calls(sim, "/_s3/leonardo-init-images")
    assert [u["body"] for u in uploads] == [{"extension": "jpg"}]  # the second job reused it
    assert len(stored) == 1 and "authorization" not in stored[0]["headers"]
    creates = [c["body"] for c in _calls(sim)]
    assert creates[0]["init_image_id"] == creates[1]["init_image_id"] and creates[0]["init_strength"] == 0.4


def test_style_references_go_as_image_prompts_and_other_images_as_png(sim, tmp_path: Path) -> None:
    refs = (
        image_ref(tmp_path / "a.gif", "style_reference", fmt="GIF"),
        image_ref(tmp_path / "b.webp", "style_reference", fmt="WEBP"),
    )
    run_job(_adapter(sim, "lightning-xl"), _spec("lightning-xl", inputs=refs))
    assert [u["body"]["extension"] for u in _calls(sim, "/init-image")] == ["png", "webp"]
    body = _calls(sim)[0]["body"]
    assert len(body["imagePrompts"]) == 2 and "init_image_id" not in body


@pytest.mark.parametrize("model", ["phoenix-1.0", "lightning-xl"])
def test_a_reference_that_is_not_an_image_is_refused_before_any_request(sim, tmp_path: Path, model) -> None:
    ref = not_an_image(tmp_path / "brief.png", "reference" if model == "phoenix-1.0" else "style_reference")
    error = refused(lambda: _adapter(sim, model).submit(_spec(model, inputs=(ref,))), ErrorKind.invalid_input)
    assert "not image media" in str(error)
    assert [r for r in sim.requests() if r["vendor"] == "leonardo"] == []


def test_a_link_only_reference_and_too_many_references_are_refused(sim, tmp_path: Path) -> None:
    linked = InputRef(role="reference", uri="https://cdn.example.com/ref.png", sha256="y")
    refused(lambda: _adapter(sim).submit(_spec(inputs=(linked,))), ErrorKind.invalid_input)
    two = (image_ref(tmp_path / "a.png"), image_ref(tmp_path / "b.png"))
    refused(lambda: _adapter(sim).submit(_spec(inputs=two)), ErrorKind.invalid_input)
    assert [r for r in sim.requests() if r["vendor"] == "leonardo"] == []


# -- Leonardo's own answers -----------------------------------------------------------------------------------------


def test_a_key_that_is_not_a_uuid_is_auth_not_a_passing_500(sim) -> None:
    error = refused(lambda: _adapter(sim, api_key="lk-not-a-uuid").submit(_spec()), ErrorKind.auth)
    assert not error.kind.transient and "authorization hook" in str(error)
    assert "lk-not-a-uuid" not in str(error)
    assert _calls(sim)[0]["status"] == 500


def test_an_empty_token_balance_is_insufficient_credits(sim) -> None:
    _limits(sim, api_tokens=0)
    refused(lambda: _adapter(sim).submit(_spec()), ErrorKind.insufficient_credits)


def test_the_concurrency_limit_is_rate_limited(sim) -> None:
    _limits(sim, concurrency=0)
    error = refused(lambda: _adapter(sim).submit(_spec()), ErrorKind.rate_limited)
    assert "concurrency limit" in str(error)


def test_a_moderated_prompt_names_the_term(sim) -> None:
    sim.configure(fault_rate=1.0, faults=["moderation"])
    error = refused(lambda: _adapter(sim).submit(_spec()), ErrorKind.moderation_input)
    assert "content moderation filter" in str(error)


def test_a_flagged_output_is_never_downloaded(sim) -> None:
    sim.configure(fault_rate=1.0, faults=["moderation_output"])
    with pytest.raises(JobFailed) as caught:
        run_job(_adapter(sim), _spec())
    assert caught.value.kind is ErrorKind.moderation_output
    assert [r for r in sim.requests() if "/_media/" in r["path"]] == []


def test_a_failed_generation_is_transient(sim) -> None:
    sim.configure(fault_rate=1.0, faults=["failed"])
    with pytest.raises(JobFailed) as caught:
        run_job(_adapter(sim), _spec())
    assert caught.value.kind is ErrorKind.generation_failed and caught.value.kind.transient


def test_a_generation_leonardo_does_not_have_is_not_found(sim) -> None:
    job = JobRef(provider="leonardo", job_id="00000000-0000-4000-8000-000000000000", spec_key="0")
    refused(lambda: _adapter(sim).poll(job), ErrorKind.not_found)
    assert _calls(sim, job.job_id, "GET")[0]["status"] == 200  # Hasura: 200 with null


# -- cost in dollars -----------------------------------------------------------------------------------------------


def test_a_cost_in_dollars_is_booked_as_it_is_and_credits_are_not() -> None:
    assert _dollars({"cost": {"amount": "0.042", "unit": "DOLLARS"}}) == 0.042
    assert _dollars({"cost": {"amount": "11", "unit": "CREDITS"}, "apiCreditCost": 11}) is None
    assert _dollars({"apiCreditCost": 11}) is None

    png = io.BytesIO()
    Image.new("RGB", (1280, 720)).save(png, "PNG")
    generation_id = "0b0b0b0b-0000-4000-8000-000000000001"

    def vendor(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            job = {
                "generationId": generation_id,
                "apiCreditCost": 11,
                "cost": {"amount": "0.0345", "unit": "DOLLARS"},
            }
            return httpx.Response(200, json={"sdGenerationJob": job})
        if request.url.path.endswith(".png"):
            return httpx.Response(200, content=png.getvalue(), headers={"content-type": "image/png"})
        image = {"id": "i", "url": "https://cdn.leonardo.ai/i.png", "nsfw": False}
        generation = {"id": generation_id, "status": "COMPLETE", "generated_images": [image]}
        return httpx.Response(200, text=json.dumps({"generations_by_pk": generation}))

    generator = LeonardoImage(
        base_url="https://cloud.leonardo.ai/api/rest/v1", api_key=KEY, time_scale=0.001,
        http_client=httpx.Client(transport=httpx.MockTransport(vendor)),
    )  # fmt: skip
    made = run_job(generator, _spec(), sleep=lambda s: None)
    assert made.cost_usd == 0.0345 and (made.width, made.height) == (1280, 720)


# -- video ---------------------------------------------------------------------------------------------------------


def _video(sim: Any, model: str | None = None, **options: Any) -> LeonardoVideo:
    return on_simulator(LeonardoVideo, sim, model, scale=SCALE, timeout=5.0, **options)


def _clip(model: str = "motion-2.0", aspect: Aspect = Aspect.vertical, **changes: Any) -> AssetSpec:
    width, height = SIZES[aspect]
    card = LEONARDO.card(model, Capability.video)
    fields = {"kind": AssetKind.video, "provider": "leonardo", "model": model, "prompt": "kayaks glide at dawn",
              "aspect": aspect, "width": width, "height": height, "duration_s": card.durations_s[0]}  # fmt: skip
    return AssetSpec(**{**fields, **changes})


def _frame(tmp_path: Path, role: str = "keyframe", **changes: Any) -> InputRef:
    return image_ref(tmp_path / f"{role}.png", role, (360, 640)).model_copy(update=changes)


def test_the_default_video_model_makes_vertical_clips():
    card = LEONARDO.card(LEONARDO.default_model(Capability.video), Capability.video)
    assert card.model == "motion-2.0" and "9:16" in card.aspects


@pytest.mark.parametrize(
    ("model", "aspect", "wire", "resolution", "frame"),
    [("motion-2.0", Aspect.vertical, "MOTION2", "RESOLUTION_720", (720, 1280)),
     ("motion-2.0-fast", Aspect.landscape, "MOTION2FAST", "RESOLUTION_720", (1280, 720)),
     ("veo-3", Aspect.vertical, "VEO3", "RESOLUTION_720", (720, 1280)),
     ("veo-3-fast", Aspect.landscape, "VEO3FAST", "RESOLUTION_720", (1280, 720)),
     ("kling-2.1", Aspect.square, "KLING2_1", "RESOLUTION_1080", (1080, 1080)),
     ("kling-2.5", Aspect.vertical, "KLING2_5", "RESOLUTION_720", (720, 1280))],
)  # fmt: skip
def test_a_clip_from_a_keyframe_is_an_uploaded_image_to_video(sim, tmp_path, model, aspect, wire, resolution,
                                                              frame):  # fmt: skip
    spec = _clip(model, aspect, inputs=(_frame(tmp_path),))
    made = run_job(_video(sim), spec)

    (create,) = _calls(sim, "/generations-image-to-video")
    body = create["body"]
    assert (body["model"], body["resolution"], (body["width"], body["height"])) == (wire, resolution, frame)
    assert body["imageType"] == "UPLOADED" and len(_calls(sim, "/init-image")) == 1
    assert body["duration"] == int(spec.duration_s) and body["isPublic"] is False
    assert made.mime == "video/mp4" and made.duration_s == pytest.approx(spec.duration_s, abs=0.6)
    assert made.width / made.height == pytest.approx(frame[0] / frame[1], rel=0.02)
    assert made.cost_usd == pytest.approx(LEONARDO.card(model).price_of(spec))  # credits: booked at the card


def test_a_clip_without_a_frame_is_text_to_video_and_the_resolution_option_is_leonardo_s(sim):
    run_job(_video(sim), _clip(options={"resolution": "480p", "promptEnhance": False}))
    (create,) = _calls(sim, "/generations-text-to-video")
    body = create["body"]
    assert (body["resolution"], body["width"], body["height"]) == ("RESOLUTION_480", 480, 832)
    assert body["promptEnhance"] is False and "imageId" not in body and "resolution" in body


def test_an_end_frame_goes_as_end_frame_image_where_the_model_takes_one(sim, tmp_path):
    start, end = _frame(tmp_path), image_ref(tmp_path / "end.png", "last_frame", (360, 600))  # other bytes
    run_job(_video(sim), _clip("kling-2.1", inputs=(start, end)))
    body = _calls(sim, "/generations-image-to-video")[0]["body"]
    assert body["endFrameImage"]["type"] == "UPLOADED" and body["endFrameImage"]["id"] != body["imageId"]
    assert len(_calls(sim, "/init-image")) == 2


def test_a_leonardo_image_generation_is_sent_as_generated_by_its_image_id(sim):
    image = _adapter(sim)
    job = image.submit(_spec(aspect=Aspect.vertical))
    run_job(image, _spec(aspect=Aspect.vertical))  # another, so a wrong pick would show
    wait_for(image, job)
    start = InputRef(role="keyframe", uri=f"job:leonardo:{job.job_id}", continues=f"leonardo:{job.job_id}",
                     sha256="0" * 64)  # fmt: skip
    run_job(_video(sim), _clip(inputs=(start,)))
    body = _calls(sim, "/generations-image-to-video")[0]["body"]
    looked = httpx.get(f"{sim.url}/leonardo/api/rest/v1/generations/{job.job_id}",
                       headers={"Authorization": f"Bearer {KEY}"}).json()  # fmt: skip
    assert body["imageType"] == "GENERATED"
    assert body["imageId"] == looked["generations_by_pk"]["generated_images"][0]["id"] != job.job_id
    assert _calls(sim, "/init-image") == []


def test_a_continuing_shot_uploads_the_previous_clip_s_last_frame(sim, tmp_path):
    previous = run_job(_video(sim), _clip())
    assert previous.duration_s
    job_id = sim.jobs()[0]["id"]
    last = _frame(tmp_path, continues=f"leonardo:{job_id}")
    run_job(_video(sim), _clip(inputs=(last,)))
    assert _calls(sim, "/generations-image-to-video")[0]["body"]["imageType"] == "UPLOADED"


@pytest.mark.parametrize("case", ["an end frame on motion", "an end frame alone", "two start frames", "a 10 s veo",
                                  "a square motion clip", "1080p motion", "a frame that is no image",
                                  "a video generation as the start"])  # fmt: skip
def test_what_a_motion_model_cannot_take_is_refused_before_any_paid_request(sim, tmp_path, case):
    start, end = _frame(tmp_path), image_ref(tmp_path / "end.png", "last_frame", (360, 640))
    specs = {
        "an end frame on motion": _clip(inputs=(start, end)),
        "an end frame alone": _clip("kling-2.1", inputs=(end,)),
        "two start frames": _clip(inputs=(start, start.model_copy(update={"role": "first_frame"}))),
        "a 10 s veo": _clip("veo-3", duration_s=10.0),
        "a square motion clip": _clip(aspect=Aspect.square),
        "1080p motion": _clip(options={"resolution": "1080p"}),
        "a frame that is no image": _clip(inputs=(not_an_image(tmp_path / "x.png", "keyframe"),)),
        "a video generation as the start": None,
    }
    paid = 0
    spec = specs[case]
    if spec is None:  # a clip of ours cannot be a GENERATED start: its last frame (a file) is the way
        run_job(_video(sim), _clip())
        job_id, paid = sim.jobs()[0]["id"], 1
        spec = _clip(inputs=(InputRef(role="keyframe", uri=f"job:leonardo:{job_id}",
                                      continues=f"leonardo:{job_id}", sha256="0" * 64),))  # fmt: skip
    refused(lambda: _video(sim).submit(spec), ErrorKind.invalid_input)
    assert len(sim.jobs()) == paid and len(_calls(sim, "-to-video")) == paid


@pytest.mark.parametrize(("fault", "kind"), [("moderation", ErrorKind.moderation_input),
                                             ("moderation_output", ErrorKind.moderation_output),
                                             ("failed", ErrorKind.generation_failed)])  # fmt: skip
def test_a_video_s_moderation_and_failure_are_told_apart(sim, fault, kind):
    sim.configure(fault_rate=1.0, faults=[fault])
    with pytest.raises((JobFailed, ProviderError)) as ended:
        run_job(_video(sim), _clip())
    assert ended.value.kind is kind


def test_the_simulator_refuses_what_leonardo_refuses_in_its_shape(sim):
    url, auth = f"{sim.url}/leonardo/api/rest/v1", {"Authorization": f"Bearer {KEY}"}
    unknown = httpx.post(
        f"{url}/generations-text-to-video", headers=auth, json={"prompt": "x", "imageId": "y"}
    )
    assert unknown.status_code == 400 and unknown.json()["code"] == "validation-failed"
    end = httpx.post(f"{url}/generations-image-to-video", headers=auth,
                     json={"prompt": "x", "imageId": "00000000-0000-0000-0000-000000000000", "imageType": "UPLOADED",
                           "model": "MOTION2"})  # fmt: skip
    assert end.status_code == 400 and "not found" in end.json()["error"]
    assert httpx.post(f"{url}/generations-text-to-video", json={"prompt": "x"}).status_code == 401
    assert sim.jobs() == []
