"""The offline image provider: a brand social graphic drawn from the palette, a motif and the headline.

The subject of the prompt (its words, without directives) picks the motif, layout and gradient, so a refined
prompt keeps its picture. The directives of vocabulary.DIRECTIVES in the prompt fix what a first render gets
wrong, the way a vendor model answers a refined prompt: without them a render carries a few flaws (off
exposure, haze, softness, an off-brand cast, a sparse layout) whose strength its subject decides.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from cutroom.assets import AssetSpec, Style
from cutroom.capabilities import Capability
from cutroom.fonts import font, wrap
from providers.local.vocabulary import DIRECTIVES, directives_in
from providers.protocol import Output
from providers.sync import SyncGenerator

RGB = tuple[int, int, int]

DEFAULT_SIZE = 1024
FALLBACK_PALETTE = ("#1F2A44", "#E8A33D", "#F5F1E8")
#: Off-brand casts a render drifts toward when the prompt does not insist on brand colours.
CASTS: tuple[RGB, ...] = ((64, 160, 150), (214, 170, 60), (150, 120, 200), (230, 120, 100), (120, 140, 70))
#: Words that pick a motif (a trailing "s" is ignored); a prompt with none of them gets one from its hash.
MOTIF_WORDS = {
    "rings": ("circle", "ring", "orbit", "planet", "bubble", "coffee", "cup", "target", "round", "donut"),
    "bands": ("speed", "fast", "stripe", "road", "race", "racing", "run", "runner", "running", "sport"),
    "grid": ("data", "tech", "grid", "city", "digital", "code", "pixel", "network", "software", "dashboard"),
    "waves": ("ocean", "sea", "water", "wave", "flow", "sound", "music", "calm", "beach", "river", "yoga"),
    "peaks": ("mountain", "peak", "outdoor", "adventure", "hike", "hiker", "summit", "travel", "forest"),
    "burst": ("launch", "sun", "sunrise", "energy", "burst", "light", "star", "rocket", "celebrate", "sale"),
}
MOTIFS = tuple(MOTIF_WORDS)
_MOTIF_OF_WORD = {word: motif for motif, words in MOTIF_WORDS.items() for word in words}
_DIRECTIVE_PATTERN = re.compile("|".join(re.escape(p) for p in DIRECTIVES.values()), re.IGNORECASE)
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class _Look:
    """What a subject decides: the layout, and how strong each flaw a plain prompt leaves in is."""

    motif: str
    angle: float
    anchor: tuple[float, float]
    headline_at: float
    background: float
    gamma: float
    haze: float
    blur: float
    cast: RGB
    cast_strength: float


class LocalImage(SyncGenerator):
    name = "local"
    capability = Capability.image
    model = "brand-canvas-1"

    def render(self, spec: AssetSpec) -> Output:
        width, height = spec.width or DEFAULT_SIZE, spec.height or DEFAULT_SIZE
        image = render_image(spec.prompt, width, height, spec.style, seed=spec.seed, detail_key=spec.key())
        buffer = io.BytesIO()
        # Grain makes PNGs expensive to deflate; level 1 is several times faster than the default, a bit larger.
        image.save(buffer, format="PNG", compress_level=1)
        return Output(data=buffer.getvalue(), mime="image/png", width=width, height=height)


def render_image(
    prompt: str, width: int, height: int, style: Style | None, *, seed: int = 0, detail_key: str = ""
) -> Image.Image:
    """The graphic for a prompt. Same arguments, same pixels; detail_key varies only grain and accents."""
    wants = directives_in(prompt)
    brand = [_rgb(c) for c in (style.palette if style and style.palette else FALLBACK_PALETTE)]
    palette = _working_palette(brand)
    look = _look(_subject(prompt), seed)
    background = brand[int(look.background * len(brand))]
    if "exposure" in wants and not 0.2 <= _luma(background) <= 0.8:
        # No lighting evens out a near-black or near-white ground: move it to the brand's mid-tone.
        background = min(palette, key=lambda c: abs(_luma(c) - 0.5))
    others = [c for c in palette if c != background] or [_toward_luma(background, 0.15)]

    canvas = Image.fromarray(
        _background(width, height, background, others[-1], look, strict="palette" in wants)
    )
    _MOTIF_DRAWERS[look.motif](ImageDraw.Draw(canvas), width, height, look, others)
    if "content" in wants:
        _rich_layers(canvas, look, palette, others, detail_key)
    if style and style.headline:
        _headline(canvas, style.headline, look, palette, background)
    if style and "content" in wants:
        _brand_strip(canvas, style.brand, palette, background)

    pixels = np.asarray(canvas, dtype=np.float32) / 255.0
    if "palette" not in wants:
        pixels = pixels + (np.asarray(look.cast, dtype=np.float32) / 255.0 - pixels) * look.cast_strength
    if "contrast" not in wants:
        pixels = pixels + (pixels.mean(axis=(0, 1)) - pixels) * look.haze
    else:
        # Bold contrast stretches a flat composition's tones about their mean, not just lifting the haze.
        # Measured on luminance: brand colours of equal lightness (a red beside a blue) read as flat.
        spread = float((pixels @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)).std())
        if 0 < spread < BOLD_SPREAD:
            mean = pixels.mean(axis=(0, 1))
            pixels = mean + (pixels - mean) * min(MAX_CONTRAST_GAIN, BOLD_SPREAD / spread)
    pixels = np.clip(pixels, 0, 1) ** (_gamma_to_mid(pixels) if "exposure" in wants else look.gamma)
    if "palette" in wants:
        pixels = _snap_to(pixels, palette, 0.75)
    if "exposure" in wants:
        # Even lighting keeps every tone off the clipping points.
        pixels = 0.025 + 0.95 * pixels
    if "sharpness" in wants:
        pixels = _grain(pixels, detail_key)
    image = Image.fromarray((np.clip(pixels, 0, 1) * 255 + 0.5).astype(np.uint8))
    if "sharpness" in wants:
        return image
    return image.filter(ImageFilter.GaussianBlur(look.blur * max(width, height) / 768))


BOLD_SPREAD = 0.26
MAX_CONTRAST_GAIN = 1.8


def _subject(prompt: str) -> str:
    """The prompt without its directives, normalised: what the picture is of."""
    return " ".join(_DIRECTIVE_PATTERN.sub(" ", prompt).replace(",", " ").lower().split())


def _rng(*parts: object) -> np.random.Generator:
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


def _look(subject: str, seed: int) -> _Look:
    """The layout and flaws for a subject: its first motif word picks the motif, its hash the rest."""
    rng = _rng(subject, seed)
    words = re.findall(r"[a-z]+", subject)
    named = [m for w in words if (m := _MOTIF_OF_WORD.get(w) or _MOTIF_OF_WORD.get(w.removesuffix("s")))]
    darker = rng.random() < 0.6
    return _Look(
        motif=named[0] if named else MOTIFS[int(rng.integers(len(MOTIFS)))],
        angle=float(rng.uniform(0, 2 * math.pi)),
        anchor=(float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.15, 0.45))),
        headline_at=float(rng.choice([0.2, 0.5, 0.72])),
        background=float(rng.random()),
        gamma=float(rng.uniform(1.3, 1.6) if darker else rng.uniform(0.6, 0.76)),
        haze=float(rng.uniform(0.15, 0.3)),
        blur=float(rng.uniform(0.6, 1.2)),
        cast=CASTS[int(rng.integers(len(CASTS)))],
        cast_strength=float(rng.uniform(0.14, 0.26)),
    )


def _working_palette(brand: list[RGB]) -> list[RGB]:
    """The brand colours, plus a tint or shade of them for any of dark, mid and light the brand lacks."""
    colours = list(dict.fromkeys(brand))
    if min(map(_luma, colours)) > 0.3:
        colours.append(_toward_luma(min(brand, key=_luma), 0.15))
    if max(map(_luma, colours)) < 0.75:
        colours.append(_toward_luma(max(brand, key=_luma), 0.92))
    if not any(0.3 <= _luma(c) <= 0.7 for c in colours):
        colours.append(_toward_luma(max(brand, key=_saturation), 0.5))
    return colours


def _rgb(hex_colour: str) -> RGB:
    return int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16)


def _luma(colour: RGB) -> float:
    return (0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]) / 255


def _saturation(colour: RGB) -> int:
    return max(colour) - min(colour)


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    red, green, blue = (round(x + (y - x) * t) for x, y in zip(a, b, strict=True))
    return red, green, blue


def _toward_luma(colour: RGB, target: float) -> RGB:
    """The tint (mixed with white) or shade (mixed with black) of a colour with the given luminance."""
    luma = _luma(colour)
    if luma > target:
        return _mix(colour, (0, 0, 0), 1 - target / luma)
    return _mix(colour, (255, 255, 255), (target - luma) / (1 - luma))


def _background(width: int, height: int, start: RGB, other: RGB, look: _Look, *, strict: bool) -> np.ndarray:
    """A linear gradient along the subject's angle: within one brand colour when strict, else into another."""
    end = _mix(start, (0, 0, 0), 0.12) if strict else _mix(start, other, 0.55)
    xs = np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, :]
    ys = np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None]
    t = np.clip(xs * math.cos(look.angle) + ys * math.sin(look.angle) + 0.5, 0, 1)[..., None]
    a, b = np.asarray(start, dtype=np.float32), np.asarray(end, dtype=np.float32)
    return (a + (b - a) * t).astype(np.uint8)


def _rings(draw: ImageDraw.ImageDraw, w: int, h: int, look: _Look, colours: list[RGB]) -> None:
    cx, cy = look.anchor[0] * w, look.anchor[1] * h
    radius = 0.55 * min(w, h)
    for i in range(6):
        r = radius * (1 - i / 6)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colours[i % len(colours)])


def _bands(draw: ImageDraw.ImageDraw, w: int, h: int, look: _Look, colours: list[RGB]) -> None:
    dx, dy = math.cos(look.angle + math.pi / 4), math.sin(look.angle + math.pi / 4)
    reach, unit = w + h, min(w, h)
    for i, thickness in enumerate((0.16, 0.07, 0.11, 0.04)):
        shift = (look.anchor[0] - 0.5) * w + (i - 1.5) * 0.17 * unit
        half = thickness * unit / 2
        cx, cy = w / 2 - shift * dy, h / 2 + shift * dx
        corners = [
            (cx + dx * reach * s - dy * half * t, cy + dy * reach * s + dx * half * t)
            for s, t in ((-1, -1), (1, -1), (1, 1), (-1, 1))
        ]
        draw.polygon(corners, fill=colours[i % len(colours)])


def _grid(draw: ImageDraw.ImageDraw, w: int, h: int, look: _Look, colours: list[RGB]) -> None:
    step = 0.07 * min(w, h)
    cx, cy = look.anchor[0] * w, look.anchor[1] * h
    for row in range(int(h / step) + 1):
        for col in range(int(w / step) + 1):
            x, y = (col + 0.5) * step, (row + 0.5) * step
            r = step * 0.45 * max(0.0, 1 - math.hypot(x - cx, y - cy) / (0.7 * max(w, h)))
            if r > 1:
                draw.ellipse((x - r, y - r, x + r, y + r), fill=colours[(row + col) % len(colours)])


def _waves(draw: ImageDraw.ImageDraw, w: int, h: int, look: _Look, colours: list[RGB]) -> None:
    for i in range(4):
        base, amplitude, length = h * (0.55 + 0.11 * i), 0.035 * h, w * (0.8 + 0.15 * i)
        crest = [
            (x, base + amplitude * math.sin(look.angle + i * 0.9 + 2 * math.pi * x / length))
            for x in range(0, w + 16, 16)
        ]
        draw.polygon([(0, h), *crest, (w, h)], fill=colours[i % len(colours)])


def _peaks(draw: ImageDraw.ImageDraw, w: int, h: int, look: _Look, colours: list[RGB]) -> None:
    sun = 0.14 * min(w, h)
    cx, cy = look.anchor[0] * w, look.anchor[1] * h
    draw.ellipse((cx - sun, cy - sun, cx + sun, cy + sun), fill=colours[-1])
    for i in range(3):
        count, valley = 2 + i, h * (0.68 + 0.09 * i)
        ridge = [(0.0, valley)]
        for k in range(count):
            top = h * (0.42 + 0.1 * i + 0.06 * math.sin(look.angle * (k + 2) + i))
            ridge += [
                (w * (k + 0.5 + 0.25 * math.sin(look.angle + k)) / count, top),
                (w * (k + 1) / count, valley),
            ]
        draw.polygon([(0.0, float(h)), *ridge, (float(w), float(h))], fill=colours[i % len(colours)])


def _burst(draw: ImageDraw.ImageDraw, w: int, h: int, look: _Look, colours: list[RGB]) -> None:
    cx, cy = look.anchor[0] * w, look.anchor[1] * h
    reach, rays = 1.5 * max(w, h), 16
    for k in range(0, rays, 2):
        a0, a1 = look.angle + 2 * math.pi * k / rays, look.angle + 2 * math.pi * (k + 1) / rays
        rim = [(cx + reach * math.cos(a), cy + reach * math.sin(a)) for a in (a0, a1)]
        draw.polygon([(cx, cy), *rim], fill=colours[0])
    r = 0.16 * min(w, h)
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colours[-1])


_MOTIF_DRAWERS: dict[str, Callable[[ImageDraw.ImageDraw, int, int, _Look, list[RGB]], None]] = {
    "rings": _rings,
    "bands": _bands,
    "grid": _grid,
    "waves": _waves,
    "peaks": _peaks,
    "burst": _burst,
}


def _rich_layers(
    canvas: Image.Image, look: _Look, palette: list[RGB], others: list[RGB], detail_key: str
) -> None:
    """A halftone field, scattered accents and a keyline over the motif: the depth of a layered layout."""
    w, h = canvas.size
    draw = ImageDraw.Draw(canvas)
    unit = min(w, h)
    step = 0.045 * unit
    fx, fy = (1 - look.anchor[0]) * w, (1 - look.anchor[1]) * h
    for row in range(int(h / step) + 1):
        for col in range(int(w / step) + 1):
            x, y = (col + 0.5) * step, (row + 0.5) * step
            r = step * 0.32 * (1 - math.hypot(x - fx, y - fy) / (0.5 * max(w, h)))
            if r > 1:
                draw.ellipse((x - r, y - r, x + r, y + r), fill=others[0])
    rng = _rng("accents", detail_key)
    for _ in range(40):
        x, y, r = rng.uniform(0, w), rng.uniform(0, h), unit * rng.uniform(0.006, 0.022)
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x - r, y - r, x + r, y + r), fill=palette[int(rng.integers(len(palette)))])
    inset = 0.04 * unit
    draw.rectangle(
        (inset, inset, w - inset, h - inset), outline=others[-1], width=max(2, round(0.006 * unit))
    )


def _text_colours(palette: list[RGB], background: RGB) -> tuple[RGB, RGB]:
    """(backing, ink): the darkest and lightest brand colours, the backing the one that stands off the ground.

    Near-black and white stand in when the brand's colours are too alike to read on each other.
    """
    dark, light = min(palette, key=_luma), max(palette, key=_luma)
    if _luma(light) - _luma(dark) < 0.5:
        dark, light = (20, 20, 24), (250, 250, 250)
    if abs(_luma(dark) - _luma(background)) >= abs(_luma(light) - _luma(background)):
        return dark, light
    return light, dark


def _headline(canvas: Image.Image, text: str, look: _Look, palette: list[RGB], background: RGB) -> None:
    """The headline, wrapped and sized to the frame, on a card of the brand's darkest or lightest colour."""
    w, h = canvas.size
    max_width, max_height = 0.8 * w, 0.3 * h
    size = round(0.13 * min(w, h))
    lines = wrap(text, font(size), max_width)
    widest = max(font(size).getlength(line) for line in lines)
    while size > 12 and (widest > max_width or len(lines) * size * 1.2 > max_height):
        size = max(12, round(size * 0.9))
        lines = wrap(text, font(size), max_width)
        widest = max(font(size).getlength(line) for line in lines)
    backing, ink = _text_colours(palette, background)
    line_height, pad = round(size * 1.2), round(size * 0.6)
    box_w, box_h = widest + 2 * pad, len(lines) * line_height - (line_height - size) + 2 * pad
    x0 = (w - box_w) / 2
    y0 = min(max(look.headline_at * h - box_h / 2, 0.05 * h), 0.9 * h - box_h)
    draw = ImageDraw.Draw(canvas)
    draw.rounded_rectangle((x0, y0, x0 + box_w, y0 + box_h), radius=round(size * 0.35), fill=backing)
    for i, line in enumerate(lines):
        draw.text((w / 2, y0 + pad + i * line_height), line, font=font(size), fill=ink, anchor="mt")


def _brand_strip(canvas: Image.Image, brand: str, palette: list[RGB], background: RGB) -> None:
    """The brand name in a bar along the foot of the frame."""
    w, h = canvas.size
    backing, ink = _text_colours(palette, background)
    bar = round(0.07 * h)
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, h - bar, w, h), fill=backing)
    draw.text(
        (w / 2, h - bar / 2), brand.upper(), font=font(max(10, round(bar * 0.42))), fill=ink, anchor="mm"
    )


def _snap_to(pixels: np.ndarray, palette: list[RGB], strength: float) -> np.ndarray:
    """Pull every pixel part of the way to its nearest brand colour: what "strictly in brand colours" asks."""
    colours = np.asarray(palette, dtype=np.float32) / 255.0
    # argmin |p - c|^2 = argmin (|c|^2 - 2 p.c): one matrix product instead of a distance per colour.
    nearest = ((colours**2).sum(axis=1) - 2 * pixels @ colours.T).argmin(axis=2)
    return pixels + (colours[nearest] - pixels) * strength


def _gamma_to_mid(pixels: np.ndarray) -> float:
    """The gamma that brings mean luminance to mid-grey, within what keeps colours recognisable."""
    mean = float(np.clip(np.clip(pixels, 0, 1) @ _LUMA, 0.01, 0.99).mean())
    return min(1.5, max(0.65, math.log(0.5) / math.log(mean)))


def _grain(pixels: np.ndarray, detail_key: str) -> np.ndarray:
    """Fine monochrome grain: the texture a crisp, detailed render has even in its flat areas."""
    h, w = pixels.shape[:2]
    return pixels + _rng("grain", detail_key).standard_normal((h, w, 1), dtype=np.float32) * 0.018
