"""Long-form guided audio: scripts read as writers mean them, and pauses that land where the script asks, measured
from the sound itself."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np
import pytest

from cutroom.assets import AssetKind, AssetSpec
from cutroom.capabilities import Capability
from cutroom.longform import DEFAULT_PAUSE_S, ScriptError, parse_script
from cutroom.mastering import normalised, read_pcm
from cutroom.pauses import Clause, stitch
from cutroom.storage import path_of
from providers import registry
from providers.elevenlabs import VOICES
from providers.polling import run_job
from tests.helpers import ROOT, cutroom

MEDITATION = ROOT / "examples" / "scripts" / "meditation.txt"
HINDI = ROOT / "examples" / "scripts" / "dhyan-hindi.txt"
TOLERANCE_S = 0.06


def pauses_heard(pcm: np.ndarray, rate: int) -> list[float]:
    """Quiet stretches of 0.25 s or more, measured in 5 ms frames below -40 dBFS: a detector of the test's own,
    so the product's measurement is not checked against itself."""
    frame = rate // 200
    frames = pcm[: len(pcm) // frame * frame].astype(np.float64).reshape(-1, frame)
    quiet = np.sqrt((frames**2).mean(axis=1)) < 32768 * 10 ** (-40 / 20)
    runs, length = [], 0
    for q in [*quiet, False]:
        if q:
            length += 1
        elif length:
            runs.append(length * frame / rate)
            length = 0
    return [r for r in runs if r >= 0.25]


def wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2"), w.getframerate()


# --- the script format -------------------------------------------------------------------------------------


def test_headers_scenes_and_wrapped_narration():
    script = parse_script(
        "Settling In\n"
        "Welcome. Let your shoulders\n"
        "drop, and rest.\n"
        "\n"
        "Scene 2 – Body Scan\n"
        "Feel your feet. Let your legs\n"
        "soften\n"
    )
    assert [scene.title for scene in script.scenes] == ["Settling In", "Scene 2 – Body Scan"]
    assert [s.text for s in script.scenes[0].segments] == ["Welcome.", "Let your shoulders drop, and rest."]
    assert [s.line for s in script.scenes[0].segments] == [2, 2]
    # A scene's last words pause by default even without a full stop.
    assert [(s.text, s.pause_after_s) for s in script.scenes[1].segments][-1] == (
        "Let your legs soften",
        DEFAULT_PAUSE_S,
    )
    assert script.scenes[1].slug(2) == "02-scene-2-body-scan"


@pytest.mark.parametrize(
    ("mark", "seconds"),
    [("(5 sec)", 5.0), ("(10 seconds)", 10.0), ("(1.5s)", 1.5), ("( 2 SECS )", 2.0), ("(3 सेकंड)", 3.0)],
)
def test_every_pause_mark_form_is_timing_not_speech(mark, seconds):
    script = parse_script(f"Intro\nBreathe in {mark} and out.\n")
    assert [(s.text, s.pause_after_s) for s in script.segments] == [
        ("Breathe in", seconds),
        ("and out.", DEFAULT_PAUSE_S),
    ]


def test_default_pause_after_sentence_ends_and_marks_that_replace_or_add():
    script = parse_script("Intro\nOne. Two? Three! चार। Five. (4 sec) (2 sec)\n(3 sec)\nSix.\n")
    assert [(s.text, s.pause_after_s) for s in script.segments] == [
        ("One.", 1.5),
        ("Two?", 1.5),
        ("Three!", 1.5),
        ("चार।", 1.5),
        ("Five.", 9.0),  # marks after a sentence replace its default, and add up
        ("Six.", 1.5),
    ]


def test_a_hindi_script():
    script = parse_script(HINDI.read_text())
    assert [scene.slug(n) for n, scene in enumerate(script.scenes, 1)] == ["01-शुरुआत", "02-साँस"]
    assert [(s.text, s.pause_after_s) for s in script.segments] == [
        ("आराम से बैठ जाइए।", 1.5),
        ("अपनी आँखें धीरे से बंद कीजिए।", 5.0),
        ("गहरी साँस लीजिए", 3.0),
        ("और धीरे से छोड़ दीजिए।", 10.0),
    ]


def test_a_mark_before_any_words_is_a_lead_in():
    assert parse_script("Intro\n(5 sec)\nWelcome.\n").lead_in_s == 5.0


@pytest.mark.parametrize(
    ("script", "line", "words"),
    [
        ("Intro\n\nOutro\nBye.\n", 1, "scene 'Intro' has no narration"),
        ("Intro\nWelcome.\nOutro\n", 3, "scene 'Outro' has no narration"),
        ("Hello there.\nIntro\n", 1, "narration before the first scene header"),
        ("Intro\nRest. (9999 sec)\n", 2, "'(9999 sec)' is out of range"),
        ("Intro\nRest. (-5 sec)\n", 2, "'(-5 sec)' is out of range"),
        ("Intro\nRest. (0.1s)\n", 2, "out of range"),
        ("Intro\nRest. (200 sec) (200 sec)\n", 2, "add up to 400 s"),
        ("Intro\nRest\x07.\n", 2, "control character"),
        ("Intro\n" + "a" * (1 << 20) + ".\n", 2, "passes 64 KB"),
        ("", 1, "no scene header"),
    ],
)
def test_a_malformed_script_names_its_line(script, line, words):
    with pytest.raises(ScriptError) as caught:
        parse_script(script)
    assert caught.value.line == line
    assert words in str(caught.value)
    assert len(str(caught.value)) < 250  # it quotes little, even of a megabyte line


# --- timing, on real speech, without Prefect --------------------------------------------------------------


def test_hindi_pauses_land_within_tolerance_heard_from_the_levelled_master(tmp_path):
    script = parse_script(HINDI.read_text())
    voice = registry.provider(Capability.speech, "local")
    clauses, rate = [], None
    for scene in script.scenes:
        for segment in scene.segments:
            spec = AssetSpec(
                kind=AssetKind.speech, provider="local", model="espeak-ng", prompt=segment.text, voice="hi"
            )
            spoken = run_job(voice, spec)
            path = tmp_path / "clause.wav"
            path.write_bytes(spoken.data)
            pcm, rate = read_pcm(path, rate)
            clauses.append(Clause(scene.title, segment.text, pcm, segment.pause_after_s))
    track, sheet = stitch(clauses, rate)
    master, _ = normalised(track, rate)
    assert len(master) == len(track)  # levelling moves no sample
    heard = pauses_heard(master, rate)
    assert np.allclose(heard, [s.pause_after_s for s in script.segments], atol=TOLERANCE_S), heard


# --- the whole flow, through the CLI, once (and once more to see the cache) ---------------------------------


@pytest.fixture(scope="module")
def runs(prefect_server, tmp_path_factory):
    out = tmp_path_factory.mktemp("longform")
    first = cutroom("longform", str(MEDITATION), "--out", str(out))
    assert first.returncode == 0, first.stdout + first.stderr
    work = out / "campaigns" / "meditation"
    before = {p: p.stat().st_mtime_ns for p in work.rglob("*") if p.is_file()}
    again = cutroom("longform", str(MEDITATION), "--out", str(out))
    after = {p: p.stat().st_mtime_ns for p in work.rglob("*") if p.is_file()}
    return first, again, work / "longform", before, after


def test_meditation_pauses_heard_in_the_master_wav_and_mp3(runs):
    folder = runs[2]
    expected = [s.pause_after_s for s in parse_script(MEDITATION.read_text()).segments]
    pcm, rate = wav(folder / "master.wav")
    assert np.allclose(pauses_heard(pcm, rate), expected, atol=TOLERANCE_S)
    mp3, _ = read_pcm(folder / "master.mp3", rate)
    assert abs(len(mp3) - len(pcm)) / rate < 0.1
    assert np.allclose(pauses_heard(mp3, rate), expected, atol=TOLERANCE_S)


def test_the_manifest_holds_the_master_its_timing_sheet_and_the_measured_pauses(runs):
    import json

    folder = runs[2]
    pcm, rate = wav(folder / "master.wav")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["validation"]["ok"]
    assert manifest["master"]["uri"] == (folder / "master.wav").resolve().as_uri()
    assert manifest["master"]["mp3"] == (folder / "master.mp3").resolve().as_uri()
    assert manifest["master"]["duration_s"] == pytest.approx(len(pcm) / rate)
    assert len(manifest["validation"]["pauses"]) == len(manifest["segments"]) == 8
    for segment in manifest["segments"]:
        assert segment.keys() == {"scene", "text", "start_s", "end_s", "pause_after_s"}
        start, end = round(segment["start_s"] * rate), round(segment["end_s"] * rate)
        quiet_until = end + round(segment["pause_after_s"] * rate)
        assert abs(int(pcm[start])) > 0 and abs(int(pcm[end - 1])) > 0  # speech starts and ends on the marks
        assert not pcm[end:quiet_until].any()  # the pause is silence, all of it
    assert sorted(p.name for p in folder.glob("*.json")) == ["manifest.json"]  # no second copy of the sheet
    scenes = sorted((folder / "scenes").glob("*.wav"))
    assert [p.name for p in scenes] == ["01-settling-in.wav", "02-breathing.wav", "03-closing.wav"]
    assert np.array_equal(np.concatenate([wav(p)[0] for p in scenes]), pcm)


def test_the_cli_prints_the_validation_and_a_rerun_makes_nothing_new(runs):
    first, again, folder, before, after = runs
    assert "validation: 8 pauses, all within ±60 ms" in first.stdout
    assert "Notice how the air feels" in first.stdout
    assert again.returncode == 0 and again.stdout == first.stdout
    assert after == before  # no file added, none rewritten


def test_on_elevenlabs_each_clause_is_one_request_and_the_pauses_land(flows_on_simulator, tmp_path):
    from flows.longform import longform_audio

    sim = flows_on_simulator
    sim.reset(latency_scale=0.01, latency_jitter=0)
    script = "Arrive\nBreathe in. (2 sec)\n\nRest\nAnd let go.\n"
    made = asyncio.run(
        longform_audio(script, voice="rachel", provider="elevenlabs", out=str(tmp_path), campaign_id="calm")
    )
    assert made.status == "complete" and made.report.ok
    pcm, rate = wav(path_of(made.master.uri))
    assert np.allclose(pauses_heard(pcm, rate), [2.0, DEFAULT_PAUSE_S], atol=TOLERANCE_S)
    spoken = [r for r in sim.requests() if r["vendor"] == "elevenlabs"]
    assert sorted(r["body"]["text"] for r in spoken) == ["And let go.", "Breathe in."]
    assert {r["path"].split("?")[0] for r in spoken} == {
        f"/elevenlabs/v1/text-to-speech/{VOICES['rachel']}/with-timestamps"
    }


def test_a_bad_script_file_is_refused_by_line_before_anything_runs(tmp_path):
    script = tmp_path / "broken.txt"
    script.write_bytes("Intro\nRest. (5 sec)\nBreathe \xff.\n".encode("latin-1"))
    result = cutroom("longform", str(script), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "broken.txt is not UTF-8 text" in result.stderr and "line 3)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
