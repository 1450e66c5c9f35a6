"""The local judge: scores what a marketer would notice, from the media alone."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cutroom.assets import AssetKind, AssetSpec, Style
from cutroom.brief import Brand
from cutroom.media import run_ffmpeg
from providers.local.image import LocalImage
from providers.local.judge import IMAGE_WEIGHTS, SPEECH_WEIGHTS, VIDEO_WEIGHTS, LocalJudge
from providers.local.vocabulary import DIRECTIVES

#: Tests of this file run on one worker: its module fixtures are costly: one worker builds them once.
pytestmark = pytest.mark.xdist_group("judge")

PALETTE = ("#0B3D91", "#FC3D21", "#F4F4F4")
BRAND = Brand(name="Aurora", palette=list(PALETTE))
WIDTH, HEIGHT = 540, 960
CLIP_W, CLIP_H, CLIP_S = 640, 360, 3.0
RATE = 22_050
VOICE_OVER = "Launch day is here for every team"  # 7 words: about 2.8 s at 2.5 words/s


def image_spec(width: int = WIDTH, height: int = HEIGHT) -> AssetSpec:
    return AssetSpec(
        kind=AssetKind.image,
        provider="local",
        model="brand-canvas-1",
        prompt="A rocket lifting off at dawn over the coast",
        width=width,
        height=height,
        style=Style(brand="Aurora", palette=PALETTE, headline="Launch day"),
    )


VIDEO = AssetSpec(
    kind=AssetKind.video,
    provider="local",
    model="m",
    prompt="x",
    width=CLIP_W,
    height=CLIP_H,
    duration_s=CLIP_S,
)
SPEECH = AssetSpec(kind=AssetKind.speech, provider="local", model="m", prompt=VOICE_OVER)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("image") / "render.png"
    path.write_bytes(LocalImage().render(image_spec()).data)
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A moving test pattern, the same pattern frozen, and black, each CLIP_S seconds."""
    folder = tmp_path_factory.mktemp("clips")
    size, encode = f"{CLIP_W}x{CLIP_H}", ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    still = folder / "still.png"
    run_ffmpeg(
        ["-f", "lavfi", "-i", f"testsrc=size={size}:rate=1", "-frames:v", "1", str(still)], what="still"
    )
    sources = {
        "moving": ["-f", "lavfi", "-i", f"testsrc=size={size}:rate=24:duration={CLIP_S}"],
        "frozen": ["-loop", "1", "-framerate", "24", "-i", str(still), "-t", str(CLIP_S)],
        "black": ["-f", "lavfi", "-i", f"color=c=black:size={size}:rate=24:duration={CLIP_S}"],
    }
    for name, source in sources.items():
        run_ffmpeg([*source, *encode, str(folder / f"{name}.mp4")], what=f"making the {name} clip")
    return {name: folder / f"{name}.mp4" for name in sources}


def write_wav(path: Path, samples: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def voice(seconds: float = 3.0) -> np.ndarray:
    """A speech-like signal: a voiced tone with syllable-rate swells and short pauses."""
    t = np.arange(int(RATE * seconds)) / RATE
    syllables = 0.55 + 0.45 * np.sin(2 * np.pi * 3 * t)
    pauses = np.sin(2 * np.pi * 0.7 * t) > -0.6
    return 0.3 * np.sin(2 * np.pi * 180 * t) * syllables * pauses


def test_image_criteria_are_vocabulary_names_and_total_is_their_weighted_mean(rendered: Path) -> None:
    score = LocalJudge().score(rendered, image_spec(), BRAND)

    assert set(score.criteria) == set(IMAGE_WEIGHTS) <= set(DIRECTIVES)
    expected = sum(IMAGE_WEIGHTS[k] * v for k, v in score.criteria.items()) / sum(IMAGE_WEIGHTS.values())
    assert score.total == pytest.approx(expected, abs=0.1)
    assert score.judge == "local"
    assert all(0 <= v <= 100 for v in score.criteria.values())


def test_the_same_file_gets_the_same_score(rendered: Path) -> None:
    assert LocalJudge().score(rendered, image_spec(), BRAND) == LocalJudge().score(
        rendered, image_spec(), BRAND
    )


@pytest.mark.parametrize("colour", ["black", "white", (11, 61, 145)])
def test_a_blank_frame_ranks_far_below_a_rendered_one(
    colour: str | tuple, rendered: Path, tmp_path: Path
) -> None:
    blank = tmp_path / "blank.png"
    Image.new("RGB", (WIDTH, HEIGHT), colour).save(blank)
    judge = LocalJudge()

    blank_score = judge.score(blank, image_spec(), BRAND)
    rendered_score = judge.score(rendered, image_spec(), BRAND)

    assert blank_score.total < rendered_score.total - 25
    assert blank_score.criteria["content"] < 10
    assert blank_score.criteria["contrast"] < 10


def test_size_is_full_marks_only_for_the_exact_size(rendered: Path, tmp_path: Path) -> None:
    judge = LocalJudge()
    square, half = tmp_path / "square.png", tmp_path / "half.png"
    with Image.open(rendered) as image:
        image.resize((512, 512)).save(square)
        image.resize((WIDTH // 2, HEIGHT // 2)).save(half)

    assert judge.score(rendered, image_spec(), BRAND).criteria["size"] == 100
    assert judge.score(square, image_spec(), BRAND).criteria["size"] < 20  # wrong aspect
    assert 20 < judge.score(half, image_spec(), BRAND).criteria["size"] < 75  # right aspect, too small


def test_a_soft_dark_off_brand_version_scores_lower_on_each(rendered: Path, tmp_path: Path) -> None:
    with Image.open(rendered) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.float32) / 255
    teal = np.array([0.1, 0.6, 0.5], dtype=np.float32)
    spoiled = (pixels * 0.5 + teal * 0.5) ** 2.2
    worse = tmp_path / "worse.png"
    Image.fromarray((spoiled * 255).astype(np.uint8)).resize((WIDTH // 4, HEIGHT // 4)).resize(
        (WIDTH, HEIGHT), Image.BICUBIC
    ).save(worse)
    judge = LocalJudge()

    good, bad = judge.score(rendered, image_spec(), BRAND), judge.score(worse, image_spec(), BRAND)

    for criterion in ("exposure", "contrast", "sharpness", "palette"):
        assert bad.criteria[criterion] < good.criteria[criterion] - 10, criterion


def test_a_moving_clip_scores_well_on_motion_and_a_frozen_one_low(clips: dict[str, Path]) -> None:
    judge = LocalJudge()

    moving = judge.score(clips["moving"], VIDEO, BRAND)
    frozen = judge.score(clips["frozen"], VIDEO, BRAND)

    assert set(moving.criteria) == set(VIDEO_WEIGHTS) <= set(DIRECTIVES)
    assert moving.criteria["motion"] > 70
    assert frozen.criteria["motion"] < 15
    assert frozen.total < moving.total - 15
    assert moving.criteria["size"] == moving.criteria["duration"] == 100


def test_a_black_clip_scores_low(clips: dict[str, Path]) -> None:
    black = LocalJudge().score(clips["black"], VIDEO, BRAND)

    assert black.criteria["motion"] == 0
    assert black.criteria["exposure"] == 0
    assert black.total < 40


def test_a_clip_of_the_wrong_length_or_shape_loses_marks_for_it(clips: dict[str, Path]) -> None:
    judge = LocalJudge()

    long_wanted = judge.score(clips["moving"], VIDEO.model_copy(update={"duration_s": 2 * CLIP_S}), BRAND)
    vertical = judge.score(
        clips["moving"], VIDEO.model_copy(update={"width": CLIP_H, "height": CLIP_W}), BRAND
    )

    assert long_wanted.criteria["duration"] < 50
    assert vertical.criteria["size"] < 20


def test_clean_speech_scores_well(tmp_path: Path) -> None:
    score = LocalJudge().score(write_wav(tmp_path / "voice.wav", voice()), SPEECH, BRAND)

    assert set(score.criteria) == set(SPEECH_WEIGHTS) <= set(DIRECTIVES)
    assert score.total > 85


def test_clipped_speech_scores_low_on_loudness(tmp_path: Path) -> None:
    judge = LocalJudge()
    clean = judge.score(write_wav(tmp_path / "voice.wav", voice()), SPEECH, BRAND)
    clipped = judge.score(write_wav(tmp_path / "clipped.wav", voice() * 8), SPEECH, BRAND)

    assert clipped.criteria["loudness"] < 20
    assert clipped.total < clean.total - 30


@pytest.mark.parametrize(
    ("name", "samples"),
    [
        ("silent", np.zeros(RATE * 3)),
        ("whisper", voice() * 0.003),
        ("mostly dead air", np.concatenate([voice(1.0), np.zeros(RATE * 2)])),
    ],
)
def test_silent_or_inaudible_speech_scores_low(name: str, samples: np.ndarray, tmp_path: Path) -> None:
    score = LocalJudge().score(write_wav(tmp_path / "take.wav", samples), SPEECH, BRAND)

    assert score.criteria["silence"] < 40, name
    assert score.total < 70, name


def test_speech_far_too_short_for_its_text_loses_duration_marks(tmp_path: Path) -> None:
    long_text = SPEECH.model_copy(update={"prompt": " ".join([VOICE_OVER] * 6)})  # 42 words, about 17 s

    score = LocalJudge().score(write_wav(tmp_path / "voice.wav", voice()), long_text, BRAND)

    assert score.criteria["duration"] < 30


@pytest.mark.parametrize("kind", list(AssetKind))
def test_unreadable_media_raises_a_value_error_naming_the_file(kind: AssetKind, tmp_path: Path) -> None:
    junk = tmp_path / "not-media.bin"
    junk.write_text("this is not media")
    spec = image_spec().model_copy(update={"kind": kind})

    with pytest.raises(ValueError, match="not-media.bin"):
        LocalJudge().score(junk, spec, BRAND)
    with pytest.raises(ValueError, match="missing.png"):
        LocalJudge().score(tmp_path / "missing.png", spec, BRAND)
