"""The offline image provider: the right size, repeatable, varied, on-brand, headline on, directives honoured."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cutroom.assets import AssetKind, AssetSpec, Style
from cutroom.brief import Brand
from cutroom.capabilities import Capability
from providers.local.image import LocalImage
from providers.local.judge import LocalJudge
from providers.local.vocabulary import DIRECTIVES
from providers.polling import run_job

PALETTE = ("#0B3D91", "#FC3D21", "#F4F4F4")
BRAND = Brand(name="Aurora", palette=list(PALETTE))
PROMPT = "A rocket lifting off at dawn over the coast"


def spec(
    prompt: str = PROMPT, *, headline: str = "Launch day", size: tuple[int, int] | None = (540, 960)
) -> AssetSpec:
    width, height = size or (None, None)
    return AssetSpec(
        kind=AssetKind.image,
        provider="local",
        model="brand-canvas-1",
        prompt=prompt,
        width=width,
        height=height,
        style=Style(brand="Aurora", palette=PALETTE, headline=headline),
    )


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32)


def test_renders_a_png_of_the_requested_size() -> None:
    out = LocalImage().render(spec(size=(1080, 1920)))

    assert out.mime == "image/png"
    assert (out.width, out.height) == (1080, 1920)
    with Image.open(io.BytesIO(out.data)) as image:
        assert image.format == "PNG"
        assert image.size == (1080, 1920)


def test_a_spec_without_size_or_style_gets_a_square_in_a_fallback_palette() -> None:
    bare = AssetSpec(kind=AssetKind.image, provider="local", model="brand-canvas-1", prompt=PROMPT)

    out = LocalImage().render(bare)

    assert (out.width, out.height) == (1024, 1024)
    assert pixels(out.data).std() > 20


def test_works_through_the_provider_protocol() -> None:
    generator = LocalImage()

    out = run_job(generator, spec(), sleep=lambda _: None)

    assert (generator.name, generator.capability, generator.model) == (
        "local",
        Capability.image,
        "brand-canvas-1",
    )
    assert out.data.startswith(b"\x89PNG")


@pytest.mark.parametrize("prompt", [PROMPT, PROMPT + ", crisp fine detail, rich layered composition"])
def test_the_same_spec_gives_the_same_bytes(prompt: str) -> None:
    assert LocalImage().render(spec(prompt)).data == LocalImage().render(spec(prompt)).data


def test_different_prompts_give_visibly_different_pictures() -> None:
    prompts = [PROMPT, "Runners racing through a neon city at night", "A calm yoga session by the river"]
    images = [pixels(LocalImage().render(spec(p)).data) for p in prompts]

    for i, a in enumerate(images):
        for b in images[i + 1 :]:
            assert np.abs(a - b).mean() > 20  # mean change per channel, out of 255


def test_the_headline_is_typeset_centred_in_the_frame() -> None:
    with_text = pixels(LocalImage().render(spec(headline="Launch day")).data)
    without = pixels(LocalImage().render(spec(headline="")).data)

    changed = np.abs(with_text - without).max(axis=2) > 40
    rows, cols = np.nonzero(changed)
    assert changed.mean() > 0.03
    height, width = changed.shape
    assert cols.min() > 0.05 * width and cols.max() < 0.95 * width  # a card inside the frame, not a repaint
    assert abs((cols.min() + cols.max()) / 2 - width / 2) < 0.05 * width
    assert rows.max() - rows.min() < 0.4 * height


def test_a_long_headline_is_wrapped_inside_the_frame() -> None:
    long = "Everything you need to launch the next big thing, ready today for every team"
    with_text = pixels(LocalImage().render(spec(headline=long)).data)
    without = pixels(LocalImage().render(spec(headline="")).data)

    cols = np.nonzero((np.abs(with_text - without).max(axis=2) > 40).any(axis=0))[0]
    assert cols.min() > 0 and cols.max() < with_text.shape[1] - 1


def test_the_picture_is_made_of_the_brand_colours() -> None:
    image = pixels(LocalImage().render(spec(PROMPT + ", strictly in brand colours")).data).reshape(-1, 3)
    brand = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in PALETTE], dtype=np.float32)

    nearest = np.linalg.norm(image[:, None, :] - brand[None], axis=2).min(axis=1)
    assert np.median(nearest) < 25


@pytest.mark.parametrize("criterion", ["exposure", "contrast", "sharpness", "palette", "content"])
def test_each_directive_improves_what_it_names(criterion: str, tmp_path: Path) -> None:
    judge, scores = LocalJudge(), []
    # A subject whose plain render is weak on every criterion, so each change has room to show.
    for prompt in ("Mountain hikers at sunrise", f"Mountain hikers at sunrise, {DIRECTIVES[criterion]}"):
        path = tmp_path / "render.png"
        path.write_bytes(LocalImage().render(spec(prompt)).data)
        scores.append(judge.score(path, spec(prompt), BRAND).criteria[criterion])

    assert scores[1] > scores[0] + 5
