"""Scene scripts: read as writers mean them, refused by line when they cannot be, and made into narrated scene
videos offline, where one scene failing leaves the others done and a rerun makes nothing new."""

from __future__ import annotations

import asyncio
import json
import subprocess

import numpy as np
import pytest
from PIL import Image

from cutroom.capabilities import Capability
from cutroom.media import ffmpeg_exe, probe
from cutroom.script import NARRATOR, ScriptError, broll_lengths, parse_scene_script
from cutroom.storage import path_of
from providers import registry
from providers.cards import ModelCard, OptionSpec
from providers.declarations import Vendor
from providers.errors import ErrorKind, ProviderError
from providers.protocol import Output
from providers.sync import SyncGenerator
from tasks.script import LINE_GAP_S
from tests.helpers import ROOT, cutroom

STUDIO = ROOT / "examples" / "scripts" / "studio.txt"

# --- the script format ---------------------------------------------------------------------------------------


def test_the_studio_example_reads_as_three_scenes():
    scenes = parse_scene_script(STUDIO.read_text()).scenes
    assert [(s.id, s.title) for s in scenes] == [("1", "Introduction"), ("2", "The coast"), ("3", "Sign up")]
    first = scenes[0]
    assert [(d.speaker, d.text, d.line) for d in first.dialogue] == [
        (NARRATOR, "Welcome to Tern Kayaks.", 3),
        ("Maya", "I'm Maya, and I'll be your guide today.", 4),
    ]
    assert first.talking_photo == "Monica_inSleeveless_20220819" and first.presenter == "Maya"
    assert scenes[1].talking_photo is None and scenes[1].visuals == (
        "Sea kayaks gliding along a rocky coast at sunrise",
    )


@pytest.mark.parametrize(
    ("header", "scene_id", "title"),
    [
        ("[Scene 1 – Introduction]", "1", "Introduction"),
        ("[Scene 2 - Intro]", "2", "Intro"),
        ("[Scene_3 — Intro]", "3", "Intro"),
        ("[Scene-4: Intro]", "4", "Intro"),
        ("[scene 5b]", "5b", ""),
        ("[6 – Intro]", "6", "Intro"),
        ("[Scene intro_2 – Intro]", "intro_2", "Intro"),
    ],
)
def test_scene_headers_in_every_spelling(header, scene_id, title):
    scene = parse_scene_script(f"{header}\nVisual: a lake\n").scenes[0]
    assert (scene.id, scene.title) == (scene_id, title)


def test_a_scene_line_by_line():
    scene = parse_scene_script(
        "[Scene 7 – Studio]\n"
        "Dialogue: plain narration\n"
        "Dialogue (Dr. O'Neil): “Curly quotes go.”\n"
        "Talking photo: heygen:Monica_inSleeveless_20220819\n"
        'Scene 7 heygen id: "abc123"\n'
    ).scenes[0]
    assert [(d.speaker, d.text) for d in scene.dialogue] == [
        (NARRATOR, "plain narration"),
        ("Dr. O'Neil", "Curly quotes go."),
    ]
    assert (scene.avatar_provider, scene.talking_photo, scene.asset_id) == (
        "heygen",
        "Monica_inSleeveless_20220819",
        "abc123",
    )


def test_a_portrait_presents_a_scene_from_a_photo():
    scene = parse_scene_script(
        "[Scene 8 – Guide]\n"
        'Dialogue (Maya): "Follow me."\n'
        'Portrait: "photos/maya at dawn.jpg"\n'
        "Scene 8 heygen id: a1\n"
    ).scenes[0]
    assert (scene.portrait, scene.presenter_line, scene.asset_id) == ("photos/maya at dawn.jpg", 3, "a1")
    assert scene.presented and scene.talking_photo is None


@pytest.mark.parametrize(
    ("script", "line", "words"),
    [
        ("", 1, "no scene header"),
        ("Hello\n[Scene 1]\nVisual: x\n", 1, "before the first scene header"),
        ("[Scene 1]\nVisual: x\n\n[Scene_1 - Again]\nVisual: y\n", 4, "scene '1' again; line 1 has it"),
        (
            "[Scene 1]\nVisual: x\n[Scene 2]\n[Scene 3]\nVisual: z\n",
            3,
            "scene '2' has no Dialogue and no Visual",
        ),
        ("[Scene 1]\nVisual: x\nMusic: upbeat\n", 3, "'Music: upbeat' is no line a scene holds"),
        ("[Scene 1]\nVisual: x\nTalking photo: Monica\n", 3, "a talking photo but no Dialogue"),
        ('[Scene 1]\nDialogue (VO): ""\n', 2, "the dialogue is empty"),
        ("[Scene 1]\nDialogue: hi\nScene 2 heygen id: a1\n", 3, "names scene '2' inside scene '1'"),
        ("[Scene 1]\nDialogue: hi\nTalking photo: not an id\n", 3, "is no id"),
        ("[Scene 1]\nVisual: x\nPortrait: maya.png\n", 3, "a portrait but no Dialogue"),
        ("[Scene 1]\nDialogue: hi\nPortrait: ''\n", 3, "the portrait is empty"),
        ("[Scene 1]\nDialogue: hi\nPortrait: " + "p/" * 200 + "\n", 3, "a portrait of 400 characters"),
        (
            "[Scene 1]\nDialogue: hi\nTalking photo: Monica\nPortrait: maya.png\n",
            4,
            "which has its talking photo on line 3: a scene has one presenter",
        ),
        ("[Scene 1]\nVisual: x\nScene 1 heygen id: a1\n", 1, "no Talking photo or Portrait line"),
        ("[Scene 1]\nDialogue: hi\x07\n", 2, "control character"),
        ("[Scene 1]\nDialogue: " + "a" * (1 << 20) + "\n", 2, "passes 64 KB"),
    ],
)
def test_a_malformed_script_names_its_line(script, line, words):
    with pytest.raises(ScriptError) as caught:
        parse_scene_script(script)
    assert caught.value.line == line
    assert words in str(caught.value)
    assert len(str(caught.value)) < 250  # it quotes little, even of a megabyte line


def test_broll_covers_the_voice_in_lengths_the_model_makes():
    assert broll_lengths(7.2, 2, (5.0, 10.0)) == [5.0, 5.0]
    assert broll_lengths(23.0, 1, (5.0, 10.0)) == [10.0, 10.0, 10.0]  # its longest falls short: more takes
    assert broll_lengths(None, 1, ()) == [5.05]
    assert sum(broll_lengths(3.0, 2, ())) >= 3.0


def test_a_bad_script_file_is_refused_by_line_before_anything_runs(tmp_path):
    script = tmp_path / "broken.txt"
    script.write_bytes("[Scene 1]\nDialogue: caf\xe9\n".encode("latin-1"))
    result = cutroom("script", str(script), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "broken.txt is not UTF-8 text" in result.stderr and "line 2)" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


# --- the whole flow, offline, once and once more ---------------------------------------------------------------


class RefusesAvatar(SyncGenerator):
    """An avatar vendor that does not know the talking photo it is asked for."""

    name = "nophoto"
    capability = Capability.avatar
    model = "nophoto-1"

    def render(self, spec) -> Output:
        raise ProviderError(
            ErrorKind.invalid_input,
            f"talking photo {spec.options['talking_photo_id']} not found",
            provider=self.name,
        )


SCRIPT = (
    "[Scene 1 – Hello]\n"
    'Dialogue (VO): "Welcome aboard."\n'
    'Dialogue (Maya): "I am Maya."\n'
    "Talking photo: Monica_inSleeveless_20220819\n"
    "\n"
    "[Scene 2 – Coast]\n"
    "Visual: Kayaks on a calm sea\n"
    'Dialogue (VO): "Forty kilometres of coast."\n'
    "\n"
    "[Scene 3 – Lost]\n"
    'Dialogue (Maya): "You will not see me."\n'
    "Talking photo: nophoto:Nobody_2020\n"
)


@pytest.fixture(scope="module")
def runs(prefect_server, tmp_path_factory):
    from prefect.settings import PREFECT_RESULTS_LOCAL_STORAGE_PATH, temporary_settings

    from flows.script_video import script_video

    vendor = Vendor(
        name="nophoto", title="No photo", billable=False, adapters={Capability.avatar: "tests:RefusesAvatar"},
        models=(ModelCard(provider="nophoto", model="nophoto-1", capability=Capability.avatar, inputs=("audio",),
                          options={"talking_photo_id": OptionSpec(description="the photo")}),),
    )  # fmt: skip
    registry.register(vendor, {Capability.avatar: RefusesAvatar})
    tmp = tmp_path_factory.mktemp("script")
    out = tmp / "out"
    work = out / "campaigns" / "studio"

    def run():
        with temporary_settings({PREFECT_RESULTS_LOCAL_STORAGE_PATH: str(tmp / "results")}):
            return asyncio.run(script_video(SCRIPT, out=str(out), campaign_id="studio"))

    try:
        first = run()
        before = {p: p.stat().st_mtime_ns for p in work.rglob("*") if p.is_file()}
        again = run()
        after = {p: p.stat().st_mtime_ns for p in work.rglob("*") if p.is_file()}
    finally:
        registry.unregister("nophoto")
    return first, again, work, before, after


def test_each_scene_has_its_voice_and_video_and_the_failed_one_says_where_and_why(runs):
    first, _, work, _, _ = runs
    one, two, three = first.scenes
    assert (one.status, two.status, three.status) == ("complete", "complete", "failed")
    assert first.status == "partial"
    assert three.step == "avatar" and "talking photo Nobody_2020 not found" in three.error
    assert three.audio and three.video is None  # its voice stays made for a rerun
    for scene in (one, two):
        video = probe(path_of(scene.video))
        assert video.has_video and video.has_audio
        assert video.duration_s == pytest.approx(probe(path_of(scene.audio)).duration_s, abs=0.1)
    stitched = probe(path_of(first.video))
    assert stitched.duration_s > probe(path_of(one.video)).duration_s + probe(path_of(two.video)).duration_s
    manifest = json.loads((work / "script" / "manifest.json").read_text())
    assert [(s["id"], s["status"], s["error"] is None) for s in manifest["scenes"]] == [
        ("1", "complete", True),
        ("2", "complete", True),
        ("3", "failed", False),
    ]
    assert manifest["video"] == first.video


def test_the_lines_are_joined_with_their_word_timings_and_captioned_from_them(runs, tmp_path):
    one = runs[0].scenes[0]
    assert [w.word for w in one.words] == ["Welcome", "aboard.", "I", "am", "Maya."]
    lines = sorted((a for a in one.assets if a.kind == "speech"), key=lambda a: a.prompt != "Welcome aboard.")
    # The second line's words are moved by the first line and a breath.
    moved = lines[0].duration_s + LINE_GAP_S + lines[1].words[0].start_s
    assert one.words[2].start_s == pytest.approx(moved, abs=0.001)
    # A caption shows while a word is said, in the band below the presenter's card.
    word = one.words[3]
    band = _band(path_of(one.video), (word.start_s + word.end_s) / 2, tmp_path / "frame.png")
    assert (band > 240).all(axis=2).sum() > 50  # white caption text over the brand colour


def test_a_rerun_makes_nothing_new(runs):
    first, again, work, before, after = runs
    assert [(s.id, s.status, s.video) for s in again.scenes] == [
        (s.id, s.status, s.video) for s in first.scenes
    ]
    # The records of the run are written again (they carry its time); the media and the posters are not.
    records = {work / "script" / "manifest.json", work / "script" / "index.html"}
    assert {p: t for p, t in after.items() if p not in records} == {
        p: t for p, t in before.items() if p not in records
    }


def _band(video, at_s: float, png) -> np.ndarray:
    """The lower part of the frame at `at_s`, where captions sit."""
    cmd = [
        ffmpeg_exe(),
        "-loglevel",
        "error",
        "-y",
        "-ss",
        f"{at_s:.3f}",
        "-i",
        str(video),
        "-frames:v",
        "1",
        str(png),
    ]
    subprocess.run(cmd, check=True)
    frame = np.asarray(Image.open(png).convert("RGB"))
    return frame[int(frame.shape[0] * 0.7) : int(frame.shape[0] * 0.92)]
