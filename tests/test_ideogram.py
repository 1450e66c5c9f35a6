"""The Ideogram adapter (plain httpx) against simulator/ideogram.py over loopback: what the contract suite does not
check — the form Ideogram receives, aspects and resolutions, the headline and palette, references, the ephemeral
link, and Ideogram's own error answers."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from cutroom.assets import AssetSpec, InputRef, Style
from cutroom.channels import SIZES, Aspect
from providers.errors import ErrorKind
from providers.ideogram import IdeogramImage, aspect_ratio, color_palette, headlined
from providers.polling import run_job
from simulator import ideogram as simulated
from tests.simulator_fixture import SimulatorHandle
from tests.vendor_helpers import Sent, image_ref, image_spec, multipart, not_an_image, on_simulator, refused

SCALE = 0.01
#: What Ideogram renders each of our aspects at (simulator/ideogram.ASPECT_RESOLUTIONS).
RENDERED = {Aspect.landscape: (1312, 736), Aspect.vertical: (736, 1312), Aspect.square: (1024, 1024)}


@pytest.fixture
def sim(simulator: SimulatorHandle) -> Iterator[SimulatorHandle]:
    # stock_media: each output shape is drawn once, so the tests spend their time on the adapter.
    simulator.reset(latency_scale=SCALE, latency_jitter=0, stock_media=True)
    yield simulator
    simulator.reset()
    _credits(simulator, simulated.STARTING_CREDITS_USD)


def _credits(sim: SimulatorHandle, usd: float) -> None:
    httpx.post(f"{sim.url}{simulated.PREFIX}/_sim/credits", json={"credits": usd}).raise_for_status()


class Form(Sent):
    def form(self) -> dict[str, Any]:
        """The generate request's text fields (str) and files (lists of (filename, bytes) by field)."""
        (request,) = [r for r in self.requests if r.method == "POST"]
        form: dict[str, Any] = {}
        for name, filename, _, data in multipart(request):
            if filename is None:
                form[name] = data.decode()
            else:
                form.setdefault(name, []).append((filename, data))
        return form


@pytest.fixture
def sent() -> Form:
    return Form()


def adapter(sim: SimulatorHandle, sent: Sent | None = None, **options: Any) -> IdeogramImage:
    return on_simulator(IdeogramImage, sim, scale=SCALE, timeout=10.0, sent=sent, **options)


def spec(aspect: Aspect = Aspect.landscape, **changes: Any) -> AssetSpec:
    return image_spec("ideogram", "ideogram-v3", "a glass bottle of cold brew on wet sand", aspect, **changes)


def image_input(path: Path, role: str, size: tuple[int, int] = (320, 320), fmt: str = "PNG") -> InputRef:
    return image_ref(path, role, size, fmt)


def ideogram_calls(sim: SimulatorHandle, method: str | None = None) -> list[dict[str, Any]]:
    return [r for r in sim.requests() if r["vendor"] == "ideogram" and method in (None, r["method"])]


# -- the request Ideogram receives --------------------------------------------------------------------------------


@pytest.mark.parametrize("aspect", list(Aspect), ids=lambda a: a.slug)
def test_each_aspect_is_ideograms_aspect_ratio_and_the_image_has_its_shape(sim, sent, aspect: Aspect) -> None:
    made = run_job(adapter(sim, sent), spec(aspect=aspect))

    assert sent.form() == {
        "prompt": "a glass bottle of cold brew on wet sand",
        "seed": "7",
        "aspect_ratio": aspect.slug,
        "rendering_speed": "DEFAULT",
    }
    assert (made.width, made.height) == RENDERED[aspect]
    asked = SIZES[aspect][0] / SIZES[aspect][1]
    assert made.width / made.height == pytest.approx(asked, rel=0.08)
    assert made.cost_usd == pytest.approx(0.06)
    post, download = ideogram_calls(sim)
    assert post["path"] == "/ideogram/v1/ideogram-v3/generate" and post["headers"]["api-key"] == "…"
    assert "authorization" not in post["headers"]
    assert "/_media/" in download["path"] and "api-key" not in download["headers"]  # the link needs no key
    assert made.source_url and "/_media/" in made.source_url


def test_the_options_reach_ideogram_and_the_speed_sets_the_price(sim, sent) -> None:
    options = {
        "rendering_speed": "QUALITY",
        "magic_prompt": "OFF",
        "style_type": "DESIGN",
        "style_preset": "TRAVEL_POSTER",
        "negative_prompt": "blurry letters",
    }
    made = run_job(adapter(sim, sent), spec(options=options))
    form = sent.form()
    assert {k: form[k] for k in options} == options
    assert made.cost_usd == pytest.approx(0.09)


def test_a_resolution_option_is_sent_instead_of_the_aspect_ratio(sim, sent) -> None:
    made = run_job(adapter(sim, sent), spec(options={"resolution": "1280x704"}))
    form = sent.form()
    assert form["resolution"] == "1280x704" and "aspect_ratio" not in form
    assert (made.width, made.height) == (1280, 704)


def test_a_resolution_of_another_shape_is_refused_before_any_request(sim) -> None:
    error = refused(
        lambda: adapter(sim).submit(spec(options={"resolution": "1024x1024"})), ErrorKind.invalid_input
    )
    assert "1024x1024" in str(error) and ideogram_calls(sim) == []


def test_the_seed_stays_in_ideogram_range(sim, sent) -> None:
    adapter(sim, sent).submit(spec(seed=2**31 + 3))
    assert sent.form()["seed"] == "3"


def test_a_size_without_an_aspect_gets_the_nearest_ratio() -> None:
    assert aspect_ratio(spec().model_copy(update={"aspect": None, "width": 1600, "height": 1000})) == "16x10"
    assert aspect_ratio(spec().model_copy(update={"aspect": None, "width": None, "height": None})) is None


# -- the headline and the palette ---------------------------------------------------------------------------------


def test_the_headline_is_asked_for_as_quoted_text(sim, sent) -> None:
    style = Style(brand="Brew", palette=("#1F2937",), headline='Cold brew, "warm" days')
    run_job(adapter(sim, sent), spec(style=style, options={"magic_prompt": "OFF"}))
    prompt = sent.form()["prompt"]
    assert prompt.startswith("a glass bottle of cold brew on wet sand. ")
    assert "\"Cold brew, 'warm' days\"" in prompt and "legible text" in prompt


def test_the_headline_is_added_once_and_fits_any_prompt() -> None:
    style = Style(brand="Brew", palette=(), headline="  Summer\n sale  ")
    assert headlined("Beach scene!", style) == (
        'Beach scene! The image carries the headline "Summer sale" as large, legible text, spelled exactly as written.'
    )
    quoted = 'A poster reading "Summer sale"'
    assert headlined(quoted, style) == quoted
    assert headlined("", style).startswith('The image carries the headline "Summer sale"')
    assert headlined("plain", Style(brand="Brew", palette=())) == "plain"
    assert headlined("plain", None) == "plain"


def test_the_brand_palette_is_ideograms_color_palette_unless_turned_off(sim, sent) -> None:
    style = Style(brand="Brew", palette=("#1f2937", "#fa0", "teal"))
    run_job(adapter(sim, sent), spec(style=style))
    palette = json.loads(sent.form()["color_palette"])
    assert palette == {"members": [{"color_hex": "#1F2937"}, {"color_hex": "#FFAA00"}]}  # "teal" is no hex

    quiet = Form()
    run_job(adapter(sim, quiet), spec(style=style, options={"brand_palette": False}))
    assert "color_palette" not in quiet.form()
    assert color_palette(Style(brand="Brew", palette=("teal",))) is None


# -- references ---------------------------------------------------------------------------------------------------


def test_style_references_are_uploaded_as_repeated_file_parts(sim, sent, tmp_path: Path) -> None:
    first = image_input(tmp_path / "a.png", "style_reference")
    second = image_input(tmp_path / "b.jpg", "style_reference", fmt="JPEG")
    run_job(adapter(sim, sent), spec(inputs=(first, second)))
    files = sent.form()["style_reference_images"]
    assert [name for name, _ in files] == ["style_reference-0.png", "style_reference-1.jpeg"]
    assert (
        files[0][1] == (tmp_path / "a.png").read_bytes() and files[1][1] == (tmp_path / "b.jpg").read_bytes()
    )


def test_a_character_reference_goes_on_the_character_card_at_its_price(sim, sent, tmp_path: Path) -> None:
    face = image_input(tmp_path / "face.png", "character_reference")
    made = run_job(adapter(sim, sent), spec(model="ideogram-v3-character", inputs=(face,)))
    form = sent.form()
    assert [name for name, _ in form["character_reference_images"]] == ["character_reference-0.png"]
    assert made.cost_usd == pytest.approx(0.15)


def test_a_reference_in_another_image_format_is_sent_as_png(sim, sent, tmp_path: Path) -> None:
    ref = image_input(tmp_path / "style.gif", "style_reference", fmt="GIF")
    run_job(adapter(sim, sent), spec(inputs=(ref,)))
    ((name, data),) = sent.form()["style_reference_images"]
    assert name.endswith(".png") and Image.open(io.BytesIO(data)).size == (320, 320)


def test_what_ideogram_cannot_take_is_refused_before_any_request(sim, tmp_path: Path) -> None:
    fake = not_an_image(tmp_path / "style.png", "style_reference")
    url = "https://cdn.example.com/style.png"
    face = image_input(tmp_path / "face.png", "character_reference")
    generator = adapter(sim)
    cases = {
        "not an image": spec(inputs=(fake,)),
        "a link": spec(inputs=(InputRef(role="style_reference", uri=url, url=url, sha256="0" * 64),)),
        "a character on the plain card": spec(inputs=(face,)),
        "two characters": spec(model="ideogram-v3-character", inputs=(face, face)),
        "the character card without one": spec(model="ideogram-v3-character"),
    }
    for case, asked in cases.items():
        error = refused(lambda asked=asked: generator.submit(asked), ErrorKind.invalid_input)
        if case == "not an image":
            assert "not image media" in str(error)
        if case == "a link":
            assert "upload" in str(error)
    assert ideogram_calls(sim) == []


# -- the ephemeral link -------------------------------------------------------------------------------------------


class FirstDownloadDrops(httpx.BaseTransport):
    """The real transport, but the first fetch of an output link fails on the way."""

    def __init__(self) -> None:
        self.inner, self.dropped = httpx.HTTPTransport(), 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and "/_media/" in request.url.path and not self.dropped:
            self.dropped += 1
            raise httpx.ConnectError("dropped", request=request)
        return self.inner.handle_request(request)


def test_a_failed_download_is_tried_again_without_paying_again(sim) -> None:
    transport = FirstDownloadDrops()
    generator = adapter(sim, http_client=httpx.Client(timeout=10.0, transport=transport))
    made = run_job(generator, spec())
    assert made.data.startswith(b"\x89PNG") and transport.dropped == 1
    assert len(ideogram_calls(sim, "POST")) == 1 and len(sim.jobs()) == 1


def test_a_gone_link_is_not_found_and_says_the_image_was_paid_for(sim) -> None:
    sim.configure(fault_rate=1.0, faults=["expired"])
    error = refused(lambda: adapter(sim).submit(spec()), ErrorKind.not_found)
    assert "made (and billed)" in str(error)
    assert len(ideogram_calls(sim, "GET")) == 1


# -- Ideogram's answers -------------------------------------------------------------------------------------------


def test_the_422_safety_refusal_is_the_input_refused(sim) -> None:
    sim.configure(fault_rate=1.0, faults=["moderation"])
    error = refused(lambda: adapter(sim).submit(spec()), ErrorKind.moderation_input)
    assert "Prompt failed the safety check." in error.detail


def test_an_unsafe_image_is_the_output_refused_and_not_fetched(sim) -> None:
    sim.configure(fault_rate=1.0, faults=["moderation_output"])
    error = refused(lambda: adapter(sim).submit(spec()), ErrorKind.moderation_output)
    assert "is_image_safe" in str(error) and ideogram_calls(sim, "GET") == []


def test_an_empty_account_is_insufficient_credits(sim) -> None:
    _credits(sim, 0.01)
    refused(lambda: adapter(sim).submit(spec()), ErrorKind.insufficient_credits)


def test_a_bad_field_is_invalid_input_in_ideograms_words(sim) -> None:
    error = refused(lambda: adapter(sim).submit(spec(prompt="")), ErrorKind.invalid_input)
    assert error.detail.endswith("Bad Request: 'prompt' is a required property")


def test_a_bad_key_is_auth_and_never_in_the_message(sim) -> None:
    key = "short-key"
    error = refused(lambda: adapter(sim, api_key=key).submit(spec()), ErrorKind.auth)
    assert key not in str(error)
