"""The local judge: scores media from technical measurements of its own pixels and samples.

Every criterion is 0-100 and named after a key of DIRECTIVES, so the refiner can answer a weak one with
the directive the local renderers understand. The total is the weighted mean of the criteria below.
Images and frames are analysed at ANALYSIS_SIDE px on the long side, so scores do not depend on resolution.
"""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from cutroom.assets import AssetKind, AssetSpec, Score
from cutroom.brief import Brand
from cutroom.media import MediaError, ffmpeg_exe, probe

#: How much each criterion counts towards the total, per kind of media.
IMAGE_WEIGHTS: dict[str, float] = {
    "size": 10,  # wrong size is fixable by a resize, so it matters least
    "exposure": 20,
    "contrast": 15,
    "sharpness": 15,
    "palette": 20,  # on-brand colour is what a marketer notices first
    "content": 20,  # a blank or near-uniform frame is worthless whatever its other numbers
}
VIDEO_WEIGHTS: dict[str, float] = {
    "size": 10,
    "duration": 15,
    "exposure": 12,
    "contrast": 10,
    "sharpness": 10,
    "palette": 13,
    "motion": 30,  # a frozen or black clip is the failure video vendors actually produce
}
SPEECH_WEIGHTS: dict[str, float] = {"duration": 30, "loudness": 35, "silence": 35}

ANALYSIS_SIDE = 768
VIDEO_SAMPLES = 6
SPEECH_WORDS_PER_S = 2.5
AUDIO_RATE = 16_000
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


class LocalJudge:
    """A technical-metrics judge: no model, no network, the same score for the same file."""

    name = "local"

    def call_usd(self, model: str | None = None) -> float:
        """Free: it runs here."""
        return 0.0

    def score(
        self,
        media: Path,
        spec: AssetSpec,
        brand: Brand,
        criteria: tuple[str, ...] = (),
        model: str | None = None,
    ) -> Score:
        """The measurements of the media; acceptance criteria and a model are a vision judge's to use."""
        media = Path(media)
        if not media.is_file():
            raise ValueError(f"cannot score {media}: no such file")
        if spec.kind is AssetKind.image:
            criteria, weights = _score_image(media, spec, brand.palette), IMAGE_WEIGHTS
        elif spec.kind is AssetKind.video:
            criteria, weights = _score_video(media, spec, brand.palette), VIDEO_WEIGHTS
        else:
            criteria, weights = _score_speech(media, spec), SPEECH_WEIGHTS
        total = sum(weights[k] * criteria[k] for k in weights) / sum(weights.values())
        return Score(
            total=round(total, 1), criteria={k: round(v, 1) for k, v in criteria.items()}, judge=self.name
        )


def _score_image(path: Path, spec: AssetSpec, palette: list[str]) -> dict[str, float]:
    try:
        with Image.open(path) as im:
            width, height = im.size
            rgb = _analysis_rgb(im)
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"cannot score {path}: not a readable image ({exc})") from None
    luma = rgb @ _LUMA
    return {
        "size": _size_score(width, height, spec),
        **_frame_scores(rgb, luma, _brand_ramp(palette)),
        "content": _content_score(luma),
    }


def _score_video(path: Path, spec: AssetSpec, palette: list[str]) -> dict[str, float]:
    try:
        info = probe(path)
    except MediaError as exc:
        raise ValueError(f"cannot score {path}: not a readable video ({exc})") from None
    if not info.has_video or not info.width or not info.height:
        raise ValueError(f"cannot score {path}: no readable video stream")
    duration = info.duration_s or 0.0
    frames = sample_frames(path, info.width, info.height, duration)
    ramp = _brand_ramp(palette)
    lumas = [f @ _LUMA for f in frames]
    per_frame = [_frame_scores(f, y, ramp) for f, y in zip(frames, lumas, strict=True)]
    averaged = {k: float(np.mean([p[k] for p in per_frame])) for k in per_frame[0]}
    return {
        "size": _size_score(info.width, info.height, spec),
        "duration": _ratio_score(duration, spec.duration_s, full_within=0.10, zero_at=1.0),
        **averaged,
        "motion": _motion_score(lumas),
    }


def _score_speech(path: Path, spec: AssetSpec) -> dict[str, float]:
    samples = _decode_audio(path)
    duration = samples.size / AUDIO_RATE
    words = len(spec.prompt.split())
    expected = words / SPEECH_WORDS_PER_S if words else None
    # People speak at 1.5-4 words/s, so only a length far outside that means truncated or padded audio.
    loudness, silence = _level_scores(samples)
    return {
        "duration": _ratio_score(duration, expected, full_within=0.47, zero_at=1.4),
        "loudness": loudness,
        "silence": silence,
    }


def _analysis_rgb(im: Image.Image) -> np.ndarray:
    """RGB as float32 0-1, scaled so the long side is at most ANALYSIS_SIDE."""
    im = im.convert("RGB")
    scale = ANALYSIS_SIDE / max(im.size)
    if scale < 1:
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.BILINEAR, reducing_gap=2.0)
    return np.asarray(im, dtype=np.float32) / 255.0


def _analysis_size(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, ANALYSIS_SIDE / max(width, height))
    # Even sizes, because ffmpeg's scaler and yuv formats want them.
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def sample_frames(path: Path, width: int, height: int, duration: float) -> list[np.ndarray]:
    """VIDEO_SAMPLES frames at the middles of equal slices of the clip, decoded in one pass through a pipe."""
    w, h = _analysis_size(width, height)
    rate = VIDEO_SAMPLES / duration if duration > 0 else 1.0
    cmd = [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-ss", f"{0.5 / rate:.3f}", "-i", str(path),
        "-vf", f"fps={rate:.6f},scale={w}:{h}", "-frames:v", str(VIDEO_SAMPLES),
        "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True)
    count = len(proc.stdout) // (w * h * 3)
    if proc.returncode != 0 or count == 0:
        raise ValueError(f"cannot score {path}: no decodable video frames")
    raw = np.frombuffer(proc.stdout[: count * w * h * 3], dtype=np.uint8).reshape(count, h, w, 3)
    return [frame.astype(np.float32) / 255.0 for frame in raw]


def _decode_audio(path: Path) -> np.ndarray:
    """Mono float samples at AUDIO_RATE; ffmpeg reads any WAV flavour (and anything else it knows)."""
    cmd = [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(path),
        "-vn", "-ac", "1", "-ar", str(AUDIO_RATE), "-f", "f32le", "pipe:1",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0:
        reason = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["unknown error"]
        raise ValueError(f"cannot score {path}: not readable audio ({reason[0]})")
    return np.frombuffer(proc.stdout, dtype=np.float32)


def _frame_scores(rgb: np.ndarray, luma: np.ndarray, ramp: tuple[np.ndarray, np.ndarray]) -> dict[str, float]:
    return {
        "exposure": _exposure_score(luma),
        "contrast": _contrast_score(luma),
        "sharpness": _sharpness_score(luma),
        "palette": _palette_score(rgb, ramp),
    }


def _size_score(width: int, height: int, spec: AssetSpec) -> float:
    """Exact size 100; the right aspect but not the size at most 75, less when smaller; a wrong aspect ~0."""
    if spec.width and spec.height:
        if (width, height) == (spec.width, spec.height):
            return 100.0
        want = spec.width / spec.height
        ceiling = 75.0 * min(1.0, width / spec.width, height / spec.height)
    elif spec.aspect is not None:
        aspect_w, aspect_h = (int(part) for part in spec.aspect.value.split(":"))
        want, ceiling = aspect_w / aspect_h, 100.0
    else:
        return 100.0
    aspect_error = abs(math.log(width / height / want))
    return ceiling * _clip01(1 - aspect_error / 0.15)


def _ratio_score(actual: float, expected: float | None, *, full_within: float, zero_at: float) -> float:
    """100 while |ln(actual/expected)| <= full_within, falling linearly to 0 at zero_at."""
    if actual <= 0:
        return 0.0
    if not expected:
        return 100.0
    error = abs(math.log(actual / expected))
    return 100.0 * _clip01(1 - (error - full_within) / (zero_at - full_within))


def _exposure_score(luma: np.ndarray) -> float:
    """Mean luminance near mid-grey, with clipped shadows or highlights (beyond a little) penalised."""
    mean = float(luma.mean())
    clipped = float(np.mean((luma < 0.02) | (luma > 0.98)))
    tone = _clip01(1 - (abs(mean - 0.5) - 0.1) / 0.3)
    return 100.0 * tone * (1 - _clip01((clipped - 0.05) / 0.3))


def _contrast_score(luma: np.ndarray) -> float:
    """Luminance standard deviation; 0.22 (a well-exposed photograph) or more is full marks."""
    return 100.0 * _clip01(float(luma.std()) / 0.22)


def _sharpness_score(luma: np.ndarray) -> float:
    """Variance of the Laplacian (on 0-255 luma), on a log scale between a soft and a crisp frame."""
    y = luma * 255.0
    lap = -4 * y[1:-1, 1:-1] + y[:-2, 1:-1] + y[2:, 1:-1] + y[1:-1, :-2] + y[1:-1, 2:]
    variance = float(lap.var())
    return 100.0 * _clip01(math.log10(max(variance, 1e-6) / 2.0) / math.log10(250.0 / 2.0))


def _palette_score(rgb: np.ndarray, ramp: tuple[np.ndarray, np.ndarray]) -> float:
    """Area-weighted Lab distance of the 8 dominant colours to the nearest brand colour, tint or shade."""
    thumb = Image.fromarray((rgb * 255).astype(np.uint8)).resize((96, 96), Image.BILINEAR)
    quantised = thumb.quantize(colors=8, method=Image.Quantize.MEDIANCUT)
    counts = np.bincount(np.asarray(quantised).ravel(), minlength=8).astype(np.float32)
    colours = np.asarray(quantised.getpalette()[: 3 * len(counts)], dtype=np.float32).reshape(-1, 3) / 255.0
    ramp_lab, ramp_penalty = ramp
    distances = np.linalg.norm(_lab(colours)[:, None, :] - ramp_lab[None, :, :], axis=2) + ramp_penalty
    delta_e = float((distances.min(axis=1) * counts[: len(colours)]).sum() / counts.sum())
    # A delta E under 6 is "the same colour" to most eyes; 50 is a different colour family.
    return 100.0 * _clip01(1 - (delta_e - 6) / 44)


def _brand_ramp(palette: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Lab of each brand colour with its tints and shades, and the delta E a tint or shade costs.

    Brand guides allow tints and shades of their colours; the cost keeps the colours themselves first.
    """
    base = _hex_rgb(palette)
    # Up to 80% white and 60% black: further out, every colour becomes the same white or black.
    tint_steps = np.linspace(0.0, 0.8, 9, dtype=np.float32)
    shade_steps = np.linspace(0.1, 0.6, 6, dtype=np.float32)
    tints = base[:, None, :] + (1 - base[:, None, :]) * tint_steps[None, :, None]
    shades = base[:, None, :] * (1 - shade_steps[None, :, None])
    ramp = np.concatenate([tints, shades], axis=1).reshape(-1, 3)
    penalty = np.tile(np.concatenate([tint_steps, shade_steps]) * 8.0, len(base))
    return _lab(ramp), penalty


def _content_score(luma: np.ndarray) -> float:
    """Tonal entropy plus how much of the frame carries structure (tiles that are not flat)."""
    hist = np.bincount(np.clip(luma * 64, 0, 63).astype(np.int32).ravel(), minlength=64).astype(np.float64)
    p = hist[hist > 0] / hist.sum()
    entropy = float(-(p * np.log2(p)).sum())
    tile = max(8, max(luma.shape) // 24)
    rows, cols = luma.shape[0] // tile, luma.shape[1] // tile
    tiles = luma[: rows * tile, : cols * tile].reshape(rows, tile, cols, tile).std(axis=(1, 3))
    coverage = float(np.mean(tiles > 0.03))
    return 100.0 * (0.35 * _clip01(entropy / 4.5) + 0.65 * _clip01(coverage / 0.75))


def _motion_score(lumas: list[np.ndarray]) -> float:
    """Typical change between sampled frames; blank (near-uniform) frames count against it.

    The median, not the mean, so a fade or a title reveal on an otherwise still shot does not pass as motion.
    """
    if len(lumas) < 2:
        return 0.0
    change = float(np.median([np.abs(a - b).mean() for a, b in zip(lumas, lumas[1:], strict=False)]))
    blank = float(np.mean([y.std() < 0.02 for y in lumas]))
    # Under 0.002 is codec noise on a still; 0.02 (2% of full scale per pixel) is a clearly moving shot.
    return 100.0 * _clip01((change - 0.002) / 0.018) * (1 - blank)


def _level_scores(samples: np.ndarray) -> tuple[float, float]:
    """(loudness, silence): speech level of the voiced parts and clipping; share of silent 50 ms windows."""
    window = AUDIO_RATE // 20
    count = samples.size // window
    if count == 0:
        return 0.0, 0.0
    rms = np.sqrt(np.mean(samples[: count * window].reshape(count, window) ** 2, axis=1) + 1e-12)
    active = 20 * np.log10(rms) > -45
    silent_share = 1 - float(active.mean())
    silence = 100.0 * _clip01(1 - (silent_share - 0.2) / 0.5)
    if not active.any():
        return 0.0, silence
    level_db = 20 * math.log10(float(np.sqrt(np.mean(rms[active] ** 2))))
    # Speech sits near -20 dBFS RMS: under -26 strains the listener, over -8 is pushed into distortion.
    level = _clip01(1 - (-26 - level_db) / 20) if level_db < -26 else _clip01(1 - (level_db + 8) / 8)
    clipped = float(np.mean(np.abs(samples) >= 0.99))
    return 100.0 * level * _clip01(1 - clipped / 0.01), silence


def _hex_rgb(colours: list[str] | tuple[str, ...]) -> np.ndarray:
    return np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in colours], dtype=np.float32) / 255.0


def _lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (0-1, shape (n, 3)) to CIE Lab, D65."""
    linear = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = linear @ np.array(
        [[0.4124, 0.2126, 0.0193], [0.3576, 0.7152, 0.1192], [0.1805, 0.0722, 0.9505]], dtype=np.float32
    )
    xyz = xyz / np.array([0.95047, 1.0, 1.08883], dtype=np.float32)
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


def _clip01(value: float) -> float:
    return min(1.0, max(0.0, value))
