"""Reel assembly, judged the way a viewer would: it plays, fits the channel, speaks, captions and ends on the card."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cutroom import assembly
from cutroom.assembly import Cut, Reel, assemble_reel, caption_phrases, end_card, reel_duration
from cutroom.assets import WordTiming
from cutroom.brief import Brand
from cutroom.channels import SIZES, Aspect, Format
from cutroom.media import MediaError, ffmpeg_exe, probe, probe_all

#: Tests of this file run on one worker: its module fixtures are costly: one worker builds them once.
pytestmark = pytest.mark.xdist_group("assembly")
DRAFT_RENDERS = "CUTROOM_DRAFT_RENDERS"

BRAND = Brand(name="Aurora", palette=["#1A2B3C", "#F5A623"])
VERTICAL = Format(aspect=Aspect.vertical, width=720, height=1280, max_duration_s=9.5)
# s1 = 2 s + 3 s clips, s2 = 2.5 s, s3 = 2 s: s1+s2 make a 9.0 s reel, adding s3 would make it 10.5 s.
PLANNED_S = reel_duration([2, 3, 2.5], 0.5, 2.5)
S2_START_S = 2 + 3 - 2 * 0.5
RAW_RGB = ("-f", "rawvideo", "-pix_fmt", "rgb24", "-")


def ffmpeg(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", *args], capture_output=True)


def make_clip(path: Path, lavfi_source: str) -> Path:
    proc = ffmpeg(
        "-v", "error", "-f", "lavfi", "-i", lavfi_source, "-c:v", "libx264", "-preset", "ultrafast", str(path)
    )
    assert proc.returncode == 0, proc.stderr
    return path


def make_voice(path: Path, hz: int, seconds: float) -> Path:
    assert ffmpeg("-v", "error", "-f", "lavfi", "-i", f"sine=f={hz}:d={seconds}", str(path)).returncode == 0
    return path


def words(text: str, start_s: float, step_s: float = 0.2) -> list[WordTiming]:
    return [
        WordTiming(word=w, start_s=start_s + i * step_s, end_s=start_s + (i + 1) * step_s - 0.02)
        for i, w in enumerate(text.split())
    ]


def frame(path: Path, at_s: float, width: int, height: int) -> np.ndarray:
    proc = ffmpeg("-v", "error", "-ss", f"{at_s}", "-i", str(path), "-frames:v", "1", *RAW_RGB)
    return np.frombuffer(proc.stdout, np.uint8).reshape(height, width, 3).astype(int)


def last_frame(path: Path, width: int, height: int) -> np.ndarray:
    proc = ffmpeg("-v", "error", "-sseof", "-0.2", "-i", str(path), *RAW_RGB)
    return np.frombuffer(proc.stdout, np.uint8).reshape(-1, height, width, 3)[-1].astype(int)


def share_of(image: np.ndarray, hex_colour: str) -> float:
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    return float((np.abs(image - rgb).max(axis=-1) <= 12).mean())


def loudness(path: Path, start_s: float, end_s: float) -> float:
    pcm = ffmpeg(
        "-v", "error", "-i", str(path), "-map", "0:a", "-ac", "1", "-ar", "8000", "-f", "s16le", "-"
    ).stdout
    samples = np.frombuffer(pcm, np.int16)[int(start_s * 8000) : int(end_s * 8000)].astype(float)
    return float(np.sqrt((samples**2).mean()))


def assert_plays_cleanly(path: Path) -> None:
    proc = ffmpeg("-v", "error", "-i", str(path), "-f", "null", "-")
    assert proc.returncode == 0 and proc.stderr == b""


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("media")
    return {
        "wide": make_clip(d / "wide.mp4", "testsrc2=s=320x180:r=24:d=2"),
        "tall": make_clip(d / "tall.mp4", "testsrc2=s=180x320:r=25:d=3"),
        "square": make_clip(d / "square.mp4", "testsrc2=s=240x240:r=30:d=2.5"),
        "red": make_clip(d / "red.mp4", "color=c=red:s=200x100:r=24:d=2"),
        "voice1": make_voice(d / "voice1.wav", 440, 2.0),
        "voice2": make_voice(d / "voice2.wav", 660, 1.5),
    }


def vertical_cuts(media: dict[str, Path], *, captions: bool) -> list[Cut]:
    return [
        Cut(
            story_id="s1",
            clips=[media["wide"], media["tall"]],
            voice=media["voice1"],
            words=words("Hello bright new world.", 0.2) if captions else [],
        ),
        Cut(
            story_id="s2",
            clips=[media["square"]],
            voice=media["voice2"],
            words=words("Shine on.", 0.3) if captions else [],
        ),
        Cut(story_id="s3", clips=[media["red"]]),
    ]


@pytest.fixture(scope="module", autouse=True)
def final_renders():
    """Reels here are encoded as for a channel: the session's draft renders (tests/conftest.py) are off."""
    saved = os.environ.pop(DRAFT_RENDERS, None)
    yield
    if saved is not None:
        os.environ[DRAFT_RENDERS] = saved


@pytest.fixture(scope="module")
def made(media: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Reel]:
    out = tmp_path_factory.mktemp("reel") / "instagram-9x16.mp4"
    return out, assemble_reel(vertical_cuts(media, captions=True), VERTICAL, BRAND, "Shop now", out)


@pytest.fixture(scope="module")
def reel(made: tuple[Path, Reel]) -> Path:
    return made[0]


@pytest.fixture(scope="module")
def reel_without_words(media: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("plain") / "instagram-9x16.mp4"
    assemble_reel(vertical_cuts(media, captions=False), VERTICAL, BRAND, "Shop now", out)
    return out


def test_reel_duration_overlaps_the_crossfades_and_adds_the_card():
    assert reel_duration([2, 3, 2.5], 0.5, 2.5) == pytest.approx(9.0)
    assert reel_duration([4], 0.5, 2.0) == pytest.approx(6.0)
    assert reel_duration([1, 1], 2.0, 1.0) == pytest.approx(2.5)  # the fade never exceeds half a clip


def test_caption_phrases_hold_four_words_at_most_and_break_on_punctuation():
    phrases = caption_phrases(words("Meet Aurora, the lamp that listens to you. Always", 0.0))
    assert [p.text for p in phrases] == ["Meet Aurora,", "the lamp that listens", "to you.", "Always"]
    assert phrases[0].start_s == 0.0 and phrases[0].end_s == pytest.approx(phrases[1].start_s)


def test_end_card_fills_the_frame_with_the_brand_colour_and_shows_the_logo(tmp_path: Path):
    logo = tmp_path / "logo.png"
    Image.new("RGB", (200, 100), "#00FF00").save(logo)
    card = np.asarray(end_card(BRAND.model_copy(update={"logo": logo}), "Shop now", 720, 1280)).astype(int)
    assert card.shape == (1280, 720, 3)
    assert share_of(card, "#1A2B3C") > 0.7
    assert share_of(card, "#F5A623") > 0.005  # the call-to-action pill
    assert share_of(card, "#00FF00") > 0.01


def test_reel_plays_cleanly_as_channel_ready_h264_aac(reel: Path):
    assert_plays_cleanly(reel)
    streams = ffmpeg("-i", str(reel)).stderr.decode()
    assert "h264" in streams and "yuv420p" in streams and "30 fps" in streams
    assert "aac" in streams and "48000 Hz, stereo" in streams
    head = reel.read_bytes()
    assert head.index(b"moov") < head.index(b"mdat")  # +faststart: playable while it downloads


def test_a_draft_reel_is_encoded_at_x264s_fastest_preset_and_a_channel_reel_is_not(
    reel: Path, media: dict[str, Path], tmp_path: Path, monkeypatch
):
    monkeypatch.setenv(DRAFT_RENDERS, "1")
    draft = tmp_path / "draft.mp4"
    assemble_reel(vertical_cuts(media, captions=True), VERTICAL, BRAND, "Shop now", draft)
    assert_plays_cleanly(draft)
    assert probe(draft).duration_s == pytest.approx(probe(reel).duration_s, abs=0.05)
    # x264 writes its settings into the stream: ultrafast codes without CABAC, the channel preset with it.
    assert b"cabac=0" in draft.read_bytes() and b"cabac=1" in reel.read_bytes()


def test_reel_leaves_out_the_trailing_story_that_would_pass_the_limit(made: tuple[Path, Reel]):
    reel, written = made
    info = probe(reel)
    assert (info.width, info.height) == (720, 1280)
    assert info.duration_s == pytest.approx(PLANNED_S, rel=0.05)
    assert info.duration_s <= VERTICAL.max_duration_s
    assert written.stories == ["s1", "s2"] and written.info == info


def test_each_voice_is_heard_in_its_own_story_and_silence_follows(reel: Path):
    assert loudness(reel, 0.2, 1.8) > 1000
    assert loudness(reel, 2.2, S2_START_S - 0.2) < 30
    assert loudness(reel, S2_START_S + 0.2, S2_START_S + 1.3) > 1000
    assert loudness(reel, S2_START_S + 1.7, PLANNED_S - 0.2) < 30


def test_captions_appear_in_their_phrase_window_and_only_there(reel: Path, reel_without_words: Path):
    def caption_difference(at_s: float) -> float:
        third = slice(1280 * 2 // 3, 1280)
        return float(
            np.abs(
                frame(reel, at_s, 720, 1280)[third] - frame(reel_without_words, at_s, 720, 1280)[third]
            ).mean()
        )

    assert caption_difference(0.6) > 3  # "Hello bright new world." over story s1
    assert caption_difference(S2_START_S + 0.5) > 3  # "Shine on." at story s2's own offset
    assert caption_difference(2.0) < 1
    assert caption_difference(PLANNED_S - 1.0) < 1


def test_reel_ends_on_the_brand_card(reel: Path):
    assert share_of(last_frame(reel, 720, 1280), BRAND.palette[0]) > 0.7


@pytest.mark.parametrize(("aspect", "crossfade_s"), [(Aspect.square, 0.5), (Aspect.landscape, 0.0)])
def test_square_and_landscape_reels_fill_their_frame(
    aspect: Aspect, crossfade_s: float, media: dict[str, Path], tmp_path: Path
):
    width, height = SIZES[aspect]
    fmt = Format(aspect=aspect, width=width, height=height, max_duration_s=60)
    cuts = [Cut(story_id="s1", clips=[media["tall"], media["red"]])]
    info = assemble_reel(
        cuts, fmt, BRAND, "Learn more", tmp_path / "reel.mp4", crossfade_s=crossfade_s, end_card_s=1
    ).info

    assert_plays_cleanly(tmp_path / "reel.mp4")
    assert (info.width, info.height) == (width, height)
    assert info.duration_s == pytest.approx(reel_duration([3, 2], crossfade_s, 1), rel=0.05)
    assert info.has_audio and loudness(tmp_path / "reel.mp4", 0, 3.5) < 1
    # The wide red clip covers the whole frame: no letterbox bars.
    assert share_of(frame(tmp_path / "reel.mp4", 3.6, width, height), "#FF0000") > 0.95
    assert share_of(last_frame(tmp_path / "reel.mp4", width, height), BRAND.palette[0]) > 0.7


def test_missing_clip_is_named_before_ffmpeg_runs(media: dict[str, Path], tmp_path: Path, monkeypatch):
    monkeypatch.setattr(assembly, "run_ffmpeg", lambda *a, **k: pytest.fail("ffmpeg ran on bad input"))
    cuts = [Cut(story_id="s1", clips=[media["wide"]]), Cut(story_id="s2", clips=[tmp_path / "gone.mp4"])]
    with pytest.raises(ValueError, match=r"s2.*gone\.mp4"):
        assemble_reel(cuts, VERTICAL, BRAND, "Shop now", tmp_path / "out.mp4")
    with pytest.raises(ValueError, match="s1.*no clips"):
        assemble_reel([Cut(story_id="s1", clips=[])], VERTICAL, BRAND, "Shop now", tmp_path / "out.mp4")
    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(MediaError, match=r"s1.*notes\.mp4"):
        assemble_reel(
            [Cut(story_id="s1", clips=[tmp_path / "notes.mp4"])], VERTICAL, BRAND, "Go", tmp_path / "o.mp4"
        )
    assert not (tmp_path / "out.mp4").exists()


def test_one_ffmpeg_reads_all_the_inputs_as_each_would_be_read_alone(tmp_path: Path):
    files = [
        make_clip(tmp_path / "wide: red.mp4", "color=c=red:s=320x180:r=24:d=1.5"),
        make_voice(tmp_path / "voice.wav", 440, 2),
        make_clip(tmp_path / "-tall.mp4", "color=c=blue:s=90x160:r=30:d=2"),
    ]
    found = probe_all(files)
    assert found == [probe(f) for f in files]
    assert [(i.width, i.height, i.has_video, i.has_audio) for i in found] == [
        (320, 180, True, False),
        (None, None, False, True),
        (90, 160, True, False),
    ]
    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(MediaError, match=r"notes\.mp4"):
        probe_all([files[0], tmp_path / "notes.mp4", files[2]])


def test_a_reel_longer_than_one_ffmpeg_run_keeps_its_length_and_crossfades(tmp_path: Path):
    # Alternating red and blue 1 s clips, two more than one run takes: the joins must not show.
    red = make_clip(tmp_path / "red.mp4", "color=c=red:s=160x90:r=24:d=1")
    blue = make_clip(tmp_path / "blue.mp4", "color=c=blue:s=160x90:r=24:d=1")
    clips = [red if n % 2 == 0 else blue for n in range(assembly.RUN_SHOTS + 2)]
    voice = make_voice(tmp_path / "voice.wav", 440, 30)
    out = tmp_path / "reel.mp4"
    cuts = [Cut(story_id="s1", clips=clips, voice=voice)]
    fmt = VERTICAL.model_copy(update={"max_duration_s": 60})
    assemble_reel(cuts, fmt, BRAND, "Go", out, crossfade_s=0.25, end_card_s=1)

    planned_s = reel_duration([1] * len(clips), 0.25, 1)
    frames = ffmpeg("-v", "error", "-i", str(out), "-map", "0:v", "-c", "copy", "-f", "framecrc", "-").stdout
    assert sum(1 for line in frames.splitlines() if not line.startswith(b"#")) == round(planned_s * 24)
    assert loudness(out, planned_s - 0.3, planned_s) > 1000  # the voice runs to the reel's end
    assert_plays_cleanly(out)
    # The first run ends once clip RUN_SHOTS has faded in: before, halfway through and after that fade.
    fade_in_s = assembly.RUN_SHOTS * 0.75
    now, before = ("#FF0000", "#0000FF") if assembly.RUN_SHOTS % 2 == 0 else ("#0000FF", "#FF0000")
    assert share_of(frame(out, fade_in_s - 0.2, 720, 1280), before) > 0.95
    middle = frame(out, fade_in_s + 0.125, 720, 1280).mean(axis=(0, 1))
    assert middle[0] > 60 and middle[2] > 60
    assert share_of(frame(out, fade_in_s + 0.4, 720, 1280), now) > 0.95
