"""The OpenAI Images adapter, through the official `openai` SDK, against simulator/openai.py over loopback HTTP.

What the contract suite does not see: the request OpenAI receives (JSON for a new image, multipart for one made
from references or a modify), sizes for each of our aspects, options, uploads, and OpenAI's own error shapes.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, get_args, get_type_hints

import httpx
import pytest
import yaml
from openai.types import ImageModel
from openai.types.image_edit_params import ImageEditParamsBase
from openai.types.image_generate_params import ImageGenerateParamsBase
from PIL import Image

from cutroom.assets import AssetSpec, InputRef, Operation
from cutroom.capabilities import Capability
from cutroom.channels import Aspect
from providers import declarations, registry
from providers.errors import ErrorKind, ProviderError
from providers.openai import OpenAIImage
from providers.polling import run_job
from tests.helpers import cutroom
from tests.simulator_fixture import SimulatorHandle
from tests.vendor_helpers import Sent, image_ref, image_spec, not_an_image, on_simulator, refused

SCALE = 0.002  # high quality's 45 s becomes 0.09 s; the simulator's rendering is most of a test's time
OPENAI = declarations.vendor("openai")
PREFIX = OPENAI.simulator.prefix  # type: ignore[union-attr]
DEFAULT = OPENAI.default_model(Capability.image)


@pytest.fixture
def sim(simulator: SimulatorHandle) -> SimulatorHandle:
    simulator.reset(latency_scale=SCALE, latency_jitter=0)
    quota(simulator, exhausted=False)
    return simulator


def quota(sim: SimulatorHandle, *, exhausted: bool) -> None:
    httpx.post(f"{sim.url}{PREFIX}/_sim/quota", json={"exhausted": exhausted}).raise_for_status()


def adapter(sim: SimulatorHandle, sent: Sent | None = None, **options: Any) -> OpenAIImage:
    return on_simulator(OpenAIImage, sim, scale=SCALE, sent=sent, **options)


def spec(aspect: Aspect = Aspect.vertical, **changes: Any) -> AssetSpec:
    return image_spec("openai", DEFAULT, "a blue bottle on wet sand at dawn", aspect, **changes)


def picture(path: Path, size: tuple[int, int] = (64, 96), fmt: str = "PNG") -> InputRef:
    return image_ref(path, "reference", size, fmt)


def creates(sim: SimulatorHandle) -> list[dict[str, Any]]:
    return [
        r
        for r in sim.requests()
        if r["vendor"] == "openai" and r["method"] == "POST" and "/images/" in r["path"]
    ]


# -- new images ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("aspect", "size"),
    [(Aspect.vertical, "864x1536"), (Aspect.landscape, "1536x864"), (Aspect.square, "1024x1024")],
)
def test_a_new_image_asks_for_the_exact_aspect_on_a_model_that_takes_any_size(sim, aspect, size):
    made = run_job(adapter(sim), spec(aspect))

    (call,) = creates(sim)
    assert call["path"] == f"{PREFIX}/images/generations"
    assert call["headers"]["authorization"] == "Bearer …"
    assert call["body"] == {
        "model": DEFAULT,
        "prompt": spec().prompt,
        "n": 1,
        "quality": "high",
        "size": size,
    }
    assert made.mime == "image/png" and f"{made.width}x{made.height}" == size
    assert made.cost_usd == pytest.approx(0.211)  # the card's high-quality price: OpenAI takes no seed either


@pytest.mark.parametrize(
    ("aspect", "asked", "made_size"),
    [(Aspect.vertical, "1024x1536", (864, 1536)), (Aspect.landscape, "1536x1024", (1536, 864)),
     (Aspect.square, "1024x1024", (1024, 1024))],
)  # fmt: skip
def test_a_model_of_standard_sizes_gets_the_nearest_and_is_cropped_to_the_aspect(
    sim, aspect, asked, made_size
):
    made = run_job(adapter(sim), spec(aspect, model="gpt-image-1.5", options={"output_format": "jpeg"}))

    assert creates(sim)[0]["body"]["size"] == asked
    assert (made.width, made.height) == made_size and made.mime == "image/jpeg"
    with Image.open(io.BytesIO(made.data)) as image:
        assert (image.format, image.size) == ("JPEG", made_size)


def test_the_options_reach_openai_and_price_the_image(sim):
    options = {"quality": "low", "background": "transparent", "output_format": "webp", "output_compression": 60,
               "moderation": "low", "complexity": "high"}  # fmt: skip
    asked = spec(Aspect.square, options=options)
    made = run_job(adapter(sim), asked)

    body = creates(sim)[0]["body"]
    assert {k: body[k] for k in options} == options
    assert made.mime == "image/webp" and made.cost_usd == pytest.approx(0.006)
    with Image.open(io.BytesIO(made.data)) as image:
        assert image.mode == "RGBA" and image.getpixel((0, 0))[3] == 0  # a cut-out
    assert adapter(sim).estimate(spec(options={"quality": "max"})) == pytest.approx(0.844)


def test_a_long_prompt_is_cut_at_openais_cap(sim):
    run_job(adapter(sim), spec(prompt="word " * 8000))
    assert len(creates(sim)[0]["body"]["prompt"]) == 32_000


# -- references and edits ------------------------------------------------------------------------------------------


def test_references_are_uploaded_as_typed_files_through_the_edits_endpoint(sim, tmp_path):
    sent = Sent()
    style = picture(tmp_path / "style.webp", fmt="WEBP").model_copy(update={"role": "style_reference"})
    face = picture(tmp_path / "face.jpg", fmt="JPEG").model_copy(update={"role": "character_reference"})
    asked = spec(Aspect.landscape, inputs=(style, face), options={"input_fidelity": "high"})
    made = run_job(adapter(sim, sent), asked)

    (request,) = sent.requests
    assert request.url.path == f"{PREFIX}/images/edits"
    parts = sent.parts()
    files = [(name, filename, mime) for name, filename, mime, _ in parts if filename]
    assert files == [("image[]", "style_reference-1.webp", "image/webp"),
                     ("image[]", "character_reference-2.jpg", "image/jpeg")]  # fmt: skip
    fields = {name: data.decode() for name, filename, _, data in parts if not filename}
    assert fields == {"model": DEFAULT, "prompt": asked.prompt, "n": "1", "quality": "high", "size": "1536x864",
                      "input_fidelity": "high"}  # fmt: skip
    assert tmp_path.name not in request.content.decode("latin-1")  # no local path leaves the machine
    assert (made.width, made.height) == (1536, 864)


def test_a_modify_sends_its_source_to_the_edits_endpoint_and_keeps_the_asked_aspect(sim, tmp_path):
    sent = Sent()
    source = picture(tmp_path / "source.png", (96, 64)).model_copy(update={"role": "source"})
    made = run_job(adapter(sim, sent), spec(Aspect.vertical, operation=Operation.modify, inputs=(source,)))

    assert sent.requests[0].url.path == f"{PREFIX}/images/edits"
    assert [(name, filename) for name, filename, _, _ in sent.parts() if filename] == [
        ("image", "source-1.png")
    ]
    assert ("size", None, "text/plain", b"864x1536") in sent.parts()
    assert (made.width, made.height) == (864, 1536)


def test_one_reference_goes_as_the_single_image_field(sim, tmp_path):
    sent = Sent()
    run_job(adapter(sim, sent), spec(inputs=(picture(tmp_path / "ref.png"),)))
    assert [name for name, filename, _, _ in sent.parts() if filename] == ["image"]


def test_a_reference_that_is_not_an_image_openai_takes_is_refused_before_any_request(sim, tmp_path):
    notes = not_an_image(tmp_path / "logo.png")
    gif = picture(tmp_path / "anim.gif", fmt="GIF")
    generator = adapter(sim)

    assert (
        "not image media"
        in refused(lambda: generator.submit(spec(inputs=(notes,))), ErrorKind.invalid_input).detail
    )
    assert (
        "png, jpeg or webp"
        in refused(lambda: generator.submit(spec(inputs=(gif,))), ErrorKind.invalid_input).detail
    )
    assert creates(sim) == []


# -- refused before paying ------------------------------------------------------------------------------------------


def test_what_openai_would_refuse_is_refused_before_any_request(sim, tmp_path):
    reference = picture(tmp_path / "ref.png")
    link = InputRef(role="reference", uri="https://cdn.example.com/ref.png", url="https://cdn.example.com/ref.png",
                    sha256="0" * 64)  # fmt: skip
    cases = {
        "xhigh on gpt-image-2": spec(model="gpt-image-2", options={"quality": "xhigh"}),
        "transparent jpeg": spec(options={"background": "transparent", "output_format": "jpeg"}),
        "compressed png": spec(options={"output_compression": 50}),
        "moderation on an edit": spec(inputs=(reference,), options={"moderation": "low"}),
        "fidelity without references": spec(options={"input_fidelity": "high"}),
        "high fidelity on mini": spec(
            model="gpt-image-1-mini", inputs=(reference,), options={"input_fidelity": "high"}
        ),
        "fidelity on gpt-image-2": spec(
            model="gpt-image-2", inputs=(reference,), options={"input_fidelity": "low"}
        ),
        "a reference as a link": spec(inputs=(link,)),
        "seventeen references": spec(inputs=(reference,) * 17),
        "a mask": spec(inputs=(reference.model_copy(update={"role": "mask"}),)),
    }
    generator = adapter(sim)
    for case, asked in cases.items():
        ended = refused(lambda asked=asked: generator.submit(asked), ErrorKind.invalid_input)
        assert ended.provider == "openai", case
    assert creates(sim) == []


@pytest.mark.parametrize("model", ["dall-e-2", "dall-e-3", "gpt-image-1"])
def test_a_retired_model_is_refused_with_the_model_to_use(sim, model):
    ended = refused(lambda: adapter(sim).submit(spec(model=model)), ErrorKind.invalid_input)
    assert "retired" in ended.detail or "shut" in ended.detail
    assert DEFAULT in ended.detail
    assert (
        DEFAULT
        in refused(
            lambda: registry.model_for(Capability.image, "openai", model), ErrorKind.invalid_input
        ).detail
    )
    assert creates(sim) == []


# -- Sora, shut down --------------------------------------------------------------------------------------------------

SORA_BRIEF = {
    "campaign": "Spring Drop",
    "brand": {"name": "Fern", "palette": ["#224422", "#F0E68C"]},
    "goal": "sell the spring collection",
    "audience": "gardeners",
    "channels": ["tiktok"],
}


def _sent(sim: SimulatorHandle) -> list[dict[str, Any]]:
    """Requests to any vendor (the fixture's own simulator controls aside)."""
    return [r for r in sim.requests() if "/_sim/" not in r["path"]]


def _sora_refused(result: Any, model: str) -> None:
    """Exit 2 with the retirement and the models to use, no traceback."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert f"{model}: OpenAI shut" in result.stderr and "2026-09-24" in result.stderr, result.stderr
    assert "veo3.1" in result.stderr and "ray-3.2" in result.stderr


@pytest.mark.parametrize("model", ["sora-2", "sora-2-pro"])
def test_cutroom_generate_with_sora_says_it_was_shut_down_and_sends_nothing(sim, tmp_path, model):
    made = cutroom("generate", "video", "--provider", "openai", "--model", model, "--prompt", "waves at dawn",
                   "--out", str(tmp_path / "clip.mp4"), env={"CUTROOM_SIMULATOR_URL": sim.url})  # fmt: skip
    _sora_refused(made, model)
    assert _sent(sim) == [] and not (tmp_path / "clip.mp4").exists()


def test_a_brief_naming_sora_says_it_was_shut_down_and_sends_nothing(sim, tmp_path):
    brief = tmp_path / "brief.yaml"
    brief.write_text(yaml.safe_dump({**SORA_BRIEF, "providers": {"video": ["openai:sora-2"]}}))
    planned = cutroom(
        "run", str(brief), "--out", str(tmp_path / "out"), env={"CUTROOM_SIMULATOR_URL": sim.url}
    )
    _sora_refused(planned, "sora-2")
    assert "'providers.video' names 'openai:sora-2'" in planned.stderr
    assert _sent(sim) == []


def test_sora_is_refused_by_the_registry_though_openai_makes_no_video():
    assert Capability.video not in OPENAI.adapters and OPENAI.default_model(Capability.video) == ""
    detail = refused(
        lambda: registry.model_for(Capability.video, "openai", "sora-2"), ErrorKind.invalid_input
    ).detail
    assert detail.startswith("sora-2: OpenAI shut Sora 2 down on 2026-09-24")
    assert "openai" not in registry.known(Capability.video)


# -- OpenAI's answers as error kinds ---------------------------------------------------------------------------------


def test_a_model_openai_has_shut_down_is_invalid_input_naming_the_replacement(sim):
    """A card that still calls a model current, while OpenAI answers 404 model_not_found 'deprecated'."""
    generator = adapter(sim)
    card = OPENAI.card(DEFAULT).model_copy(update={"model": "dall-e-3"})
    with pytest.raises(ProviderError) as caught, generator.calling("generate"):
        generator.generate(spec(), card)
    assert caught.value.kind is ErrorKind.invalid_input and "HTTP 404" in caught.value.detail
    assert f"use {DEFAULT} instead" in caught.value.detail


def test_an_exhausted_quota_is_insufficient_credits_not_a_rate_limit(sim):
    quota(sim, exhausted=True)
    try:
        ended = refused(lambda: adapter(sim).submit(spec()), ErrorKind.insufficient_credits)
    finally:
        quota(sim, exhausted=False)
    assert not ended.kind.transient and "quota" in ended.detail
    assert len(creates(sim)) == 1  # sent once: the SDK's own retries are off


def test_a_rate_limit_waits_for_the_exhausted_limit_to_reset(sim):
    sim.configure(fault_rate=1.0, faults=["429"], retry_after_s=0.25)
    ended = refused(lambda: adapter(sim).submit(spec()), ErrorKind.rate_limited)
    assert ended.retry_after == pytest.approx(0.25)  # not Retry-After's whole second


@pytest.mark.parametrize(("fault", "kind"), [("moderation", ErrorKind.moderation_input),
                                             ("moderation_output", ErrorKind.moderation_output)])  # fmt: skip
def test_a_safety_refusal_is_told_apart_by_its_stage(sim, fault, kind):
    sim.configure(fault_rate=1.0, faults=[fault])
    for sent in (None, Sent()):  # the SDK's own httpx2 client, and an injected httpx one
        ended = refused(lambda sent=sent: adapter(sim, sent).submit(spec()), kind)
        assert "safety system" in ended.detail


def test_a_refused_key_never_appears_in_the_message(sim):
    key = "sk-proj-tooShort9876"
    ended = refused(lambda: adapter(sim, api_key=key).submit(spec()), ErrorKind.auth)
    assert key not in str(ended) and "9876" not in str(ended)


def test_an_unreadable_answer_is_transient(sim):
    sim.configure(fault_rate=1.0, faults=["malformed"])
    assert refused(lambda: adapter(sim).submit(spec()), ErrorKind.generation_failed).kind.transient


# -- the declaration against the SDK ----------------------------------------------------------------------------


def test_the_cards_name_the_sdks_models_and_values():
    models = set(get_args(ImageModel))
    cards = OPENAI.cards(Capability.image)
    assert {c.model for c in cards} <= models
    assert {c.model for c in cards if c.retired} == {"gpt-image-1", "dall-e-2", "dall-e-3"}
    assert all(c.retired for c in OPENAI.cards(Capability.video))  # Sora: kept only to be refused
    options = {name: option for card in cards for name, option in card.options.items()}
    sdk = {**get_type_hints(ImageGenerateParamsBase), **get_type_hints(ImageEditParamsBase)}
    assert set(options) <= set(sdk)
    for name in ("quality", "background", "output_format", "moderation", "input_fidelity", "complexity"):
        assert set(options[name].choices) <= set(_literals(sdk[name])), name
    for card in cards:
        if not card.retired:
            assert card.price.by == "quality" and card.price.usd == card.price.table["high"], card.model


def _literals(annotation: Any) -> set[str]:
    """The string values an annotation's Literals allow, however deep (Optional[Literal[...]])."""
    values: set[str] = set()
    for arg in get_args(annotation):
        values |= {arg} if isinstance(arg, str) else _literals(arg)
    return values
