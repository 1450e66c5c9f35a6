"""The Stability AI adapter (plain httpx) against simulator/stability.py over loopback: what the contract suite does
not check — the form Stability receives, aspects, options, the init image, and Stability's own error answers."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from cutroom.assets import AssetSpec, InputRef
from cutroom.channels import SIZES, Aspect
from providers.errors import ErrorKind
from providers.polling import run_job
from providers.stability import StabilityImage, aspect_ratio, init_image
from simulator import stability as simulated
from tests.simulator_fixture import SimulatorHandle
from tests.vendor_helpers import Sent, image_ref, image_spec, not_an_image, on_simulator, refused

SCALE = 0.01


@pytest.fixture
def sim(simulator: SimulatorHandle) -> Iterator[SimulatorHandle]:
    # stock_media: each output shape is drawn once, so the tests spend their time on the adapter.
    simulator.reset(latency_scale=SCALE, latency_jitter=0, stock_media=True)
    yield simulator
    simulator.reset()
    _credits(simulator, simulated.STARTING_CREDITS)


def _credits(sim: SimulatorHandle, credits: float) -> None:
    httpx.post(f"{sim.url}{simulated.PREFIX}/_sim/credits", json={"credits": credits}).raise_for_status()


class Form(Sent):
    def form(self, index: int = -1) -> dict[str, Any]:
        """The multipart form of a sent request: text fields as str, files as (filename, bytes)."""
        parts = self.parts(index)
        return {
            name: (filename, data) if filename is not None else data.decode()
            for name, filename, _, data in parts
        }


@pytest.fixture
def sent() -> Form:
    return Form()


def adapter(sim: SimulatorHandle, sent: Sent | None = None, **options: Any) -> StabilityImage:
    return on_simulator(StabilityImage, sim, scale=SCALE, timeout=10.0, sent=sent, **options)


def spec(aspect: Aspect = Aspect.landscape, **changes: Any) -> AssetSpec:
    return image_spec("stability", "core", "a glass bottle of cold brew on wet sand", aspect, **changes)


def reference(path: Path, size: tuple[int, int] = (640, 360), fmt: str = "PNG") -> InputRef:
    return image_ref(path, "reference", size, fmt)


def stability_calls(sim: SimulatorHandle) -> list[dict[str, Any]]:
    return [r for r in sim.requests() if r["vendor"] == "stability"]


# -- the request Stability receives -------------------------------------------------------------------------------


@pytest.mark.parametrize("aspect", list(Aspect), ids=lambda a: a.slug)
def test_each_aspect_is_stabilitys_aspect_ratio_and_the_image_has_its_shape(
    sim, sent, aspect: Aspect
) -> None:
    made = run_job(adapter(sim, sent), spec(aspect=aspect))

    form = sent.form()
    assert form == {
        "prompt": "a glass bottle of cold brew on wet sand",
        "seed": "7",
        "output_format": "png",
        "aspect_ratio": aspect.value,
    }
    assert sent.requests[-1].url.path == "/stability/v2beta/stable-image/generate/core"
    asked = SIZES[aspect][0] / SIZES[aspect][1]
    assert made.mime == "image/png" and made.width / made.height == pytest.approx(asked, rel=0.08)
    assert made.cost_usd == pytest.approx(0.03)
    (call,) = stability_calls(sim)
    assert call["headers"]["accept"] == "image/*" and call["headers"]["authorization"] == "Bearer …"
    assert call["headers"]["content-type"].startswith("multipart/form-data")


def test_sd35_models_share_the_sd3_endpoint_and_name_themselves(sim, sent) -> None:
    made = run_job(adapter(sim, sent), spec(model="sd3.5-medium", options={"cfg_scale": 5.5}))
    form = sent.form()
    assert sent.requests[-1].url.path == "/stability/v2beta/stable-image/generate/sd3"
    assert (form["model"], form["cfg_scale"], "mode" not in form) == ("sd3.5-medium", "5.5", True)
    assert made.cost_usd == pytest.approx(0.035)


def test_the_options_reach_stability(sim, sent) -> None:
    options = {"style_preset": "cinematic", "negative_prompt": "text, watermark", "output_format": "webp"}
    made = run_job(adapter(sim, sent), spec(model="ultra", options=options))
    form = sent.form()
    assert {k: form[k] for k in options} == options
    assert made.mime == "image/webp"
    assert sent.requests[-1].url.path.endswith("/generate/ultra")


def test_the_seed_stays_in_stabilitys_range_and_the_prompt_under_its_cap(sim, sent) -> None:
    generator = adapter(sim, sent)
    generator.submit(spec(seed=2**32 + 5, prompt="x" * 12_000))
    form = sent.form()
    assert int(form["seed"]) <= simulated.MAX_SEED and len(form["prompt"]) == 10_000


def test_a_size_without_an_aspect_gets_the_nearest_ratio() -> None:
    assert aspect_ratio(spec(aspect=Aspect.square).model_copy(update={"aspect": None})) == "1:1"
    wide = spec().model_copy(update={"aspect": None, "width": 2100, "height": 900})
    assert aspect_ratio(wide) == "21:9"
    assert aspect_ratio(spec().model_copy(update={"aspect": None, "width": None, "height": None})) is None


# -- image-to-image -------------------------------------------------------------------------------------------------


def test_a_reference_is_the_init_image_with_a_default_strength(sim, sent, tmp_path: Path) -> None:
    ref = reference(tmp_path / "start.png")
    made = run_job(adapter(sim, sent), spec(model="ultra", inputs=(ref,)))
    form = sent.form()
    filename, data = form["image"]
    assert filename == "reference.png" and data == (tmp_path / "start.png").read_bytes()  # 16:9 already
    assert form["strength"] == "0.5" and "aspect_ratio" not in form  # image-to-image keeps the image's shape
    assert made.width / made.height == pytest.approx(16 / 9, rel=0.08)


def test_sd35_image_to_image_sends_its_mode_and_strength(sim, sent, tmp_path: Path) -> None:
    ref = reference(tmp_path / "start.jpg", fmt="JPEG")
    run_job(adapter(sim, sent), spec(model="sd3.5-large", inputs=(ref,), options={"strength": 0.3}))
    form = sent.form()
    assert (form["mode"], form["strength"], form["model"]) == ("image-to-image", "0.3", "sd3.5-large")
    assert form["image"][0] == "reference.jpeg"


def test_an_init_image_of_another_shape_is_cropped_to_the_asked_one(sim, sent, tmp_path: Path) -> None:
    ref = reference(tmp_path / "square.png", size=(900, 900))
    made = run_job(adapter(sim, sent), spec(model="ultra", aspect=Aspect.vertical, inputs=(ref,)))
    with Image.open(io.BytesIO(sent.form()["image"][1])) as uploaded:
        assert uploaded.size == (506, 900)  # the middle 9:16 of the square
    assert made.width / made.height == pytest.approx(9 / 16, rel=0.08)


def test_an_init_image_stability_cannot_read_is_sent_as_png(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (320, 180), (1, 2, 3)).save(buffer, format="GIF")
    data, mime = init_image(buffer.getvalue(), "image/gif", (1280, 720))
    assert mime == "image/png" and data.startswith(b"\x89PNG")


def test_a_reference_that_is_not_an_image_is_refused_before_any_request(sim, tmp_path: Path) -> None:
    ref = not_an_image(tmp_path / "photo.png")
    error = refused(lambda: adapter(sim).submit(spec(model="ultra", inputs=(ref,))), ErrorKind.invalid_input)
    assert "not image media" in str(error)
    assert stability_calls(sim) == []


def test_a_link_only_reference_is_refused_before_any_request(sim) -> None:
    url = "https://cdn.example.com/start.png"
    ref = InputRef(role="reference", uri=url, url=url, sha256="0" * 64)
    error = refused(lambda: adapter(sim).submit(spec(model="ultra", inputs=(ref,))), ErrorKind.invalid_input)
    assert "upload" in str(error)
    assert stability_calls(sim) == []


def test_what_stability_cannot_start_from_is_refused_before_any_request(sim, tmp_path: Path) -> None:
    ref = reference(tmp_path / "start.png")
    generator = adapter(sim)
    cases = {
        "core takes no reference": spec(inputs=(ref,)),
        "two init images": spec(model="ultra", inputs=(ref, ref)),
        "a strength with nothing to start from": spec(model="ultra", options={"strength": 0.4}),
        "a retired model": spec(model="sd3-large"),
    }
    for case, asked in cases.items():
        error = refused(lambda asked=asked: generator.submit(asked), ErrorKind.invalid_input)
        if case == "a retired model":
            assert "sd3.5-large" in str(error)
    assert stability_calls(sim) == []


# -- Stability's answers ------------------------------------------------------------------------------------------


def test_a_403_content_moderation_is_the_input_refused_with_stabilitys_words(sim) -> None:
    sim.configure(fault_rate=1.0, faults=["moderation"])
    error = refused(lambda: adapter(sim).submit(spec()), ErrorKind.moderation_input)
    assert "content_moderation: Your request was flagged" in error.detail and "(request " in error.detail


def test_content_filtered_is_the_output_refused_and_not_kept(sim) -> None:
    sim.configure(fault_rate=1.0, faults=["moderation_output"])
    generator = adapter(sim)
    error = refused(lambda: generator.submit(spec()), ErrorKind.moderation_output)
    assert "CONTENT_FILTERED" in str(error) and generator._done == {}


def test_an_empty_account_is_insufficient_credits(sim) -> None:
    _credits(sim, 1.0)
    error = refused(lambda: adapter(sim).submit(spec()), ErrorKind.insufficient_credits)
    assert "payment_required" in error.detail


def test_a_bad_field_is_invalid_input_naming_it(sim) -> None:
    empty = spec(prompt="")
    error = refused(lambda: adapter(sim).submit(empty), ErrorKind.invalid_input)
    assert "bad_request: prompt:" in error.detail


def test_a_bad_key_is_auth_and_never_in_the_message(sim) -> None:
    key = "sk-" + "z" * 10
    error = refused(lambda: adapter(sim, api_key=key).submit(spec()), ErrorKind.auth)
    assert key not in str(error)


def test_the_balance_is_credits_in_dollars(sim) -> None:
    _credits(sim, 250.0)
    assert adapter(sim).balance() == pytest.approx(2.5)
    refused(lambda: adapter(sim, api_key="sk-bad").balance(), ErrorKind.auth)
