"""P8: long-form audio — a 30-minute guided script with 200 pause marks made offline by `cutroom longform`,
against speaking each clause and joining them with one ffmpeg concat by hand.

The script is generated here: scenes of distinct sentences (so no clause is a cache hit of another), two in
three followed by a pause mark, the third by the default sentence pause. Both ways run as a child process with
the same local voice (espeak-ng): Cutroom through its CLI with its own Prefect home and a fresh out folder, the
baseline as `python -m bench.p8_longform SCRIPT.json FOLDER`. Each master's pauses are then measured here, by a
detector of this module's own rather than the product's check: a pause is a run of at least DETECT_MIN_S in which
no sample of the decoded master passes SILENCE_DBFS, and each expected pause is the run that holds its middle.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.campaigns import CUTROOM, Finished, check, environment, prefect_home, run_child
from bench.harness import Row, ratio
from cutroom.longform import DEFAULT_PAUSE_S
from cutroom.media import ffmpeg_exe, run_ffmpeg

TITLE = "Long-form audio: a guided script with pause marks made offline"
MAX_REAL_TIME, TOLERANCE_MS = 0.1, 60.0
TARGET = f"≤ {MAX_REAL_TIME:g}× real time, every pause within ±{TOLERANCE_MS:g} ms"
#: The marked pauses, in turn; with the default 1.5 s after every third sentence, ≈ 9 s of master per mark.
MARKS_S = (3, 5, 2.5, 4, 6, 3, 2, 5)
MARK_FORMS = ("({} sec)", "({} seconds)", "({}s)")
MARKS_PER_SCENE = 10
#: Sentence parts whose lengths are coprime: sentence n is parts n mod 8, n mod 9, n mod 5, so the first 360
#: sentences are all different.
OPENINGS = (
    "Let your attention rest on",
    "Bring a gentle awareness to",
    "Notice",
    "Soften",
    "Breathe slowly into",
    "Feel the warmth spreading through",
    "Allow a sense of ease to fill",
    "Release any tension held in",
)
PLACES = (
    "your forehead",
    "the space between your eyebrows",
    "your jaw",
    "your shoulders",
    "your chest",
    "your belly",
    "your hands",
    "your hips",
    "the soles of your feet",
)
ENDINGS = (
    "",
    " as you breathe out",
    " without trying to change anything",
    " letting it be just as it is",
    " with each slow breath",
)
SCENES = ("Settling in", "Body scan", "Breathing", "Letting go", "Resting")
#: A listener's silence: no sample louder than this (the product trims and measures at -45 dBFS over 5 ms windows).
SILENCE_DBFS = -50.0
DETECT_MIN_S = 0.25
CAMPAIGN_ID = "p8"


@dataclass(frozen=True)
class Clause:
    text: str
    pause_s: float


def guided_script(marks: int) -> tuple[str, list[Clause]]:
    """A long-form script with this many pause marks, in the format of cutroom.longform, and the clauses it
    holds as a writer meant them: each sentence and the pause after it."""
    lines: list[str] = []
    clauses: list[Clause] = []
    n = marked = 0
    scenes = 0
    while marked < marks:
        if marked // MARKS_PER_SCENE == scenes:
            lines += ["", f"Part {scenes + 1} – {SCENES[scenes % len(SCENES)]}"]
            scenes += 1
        text = f"{OPENINGS[n % 8]} {PLACES[n % 9]}{ENDINGS[n % 5]}."
        if n % 3 == 2:
            clauses.append(Clause(text, DEFAULT_PAUSE_S))
            lines.append(text)
        else:
            pause = MARKS_S[marked % len(MARKS_S)]
            clauses.append(Clause(text, pause))
            lines.append(f"{text} {MARK_FORMS[marked % len(MARK_FORMS)].format(f'{pause:g}')}")
            marked += 1
        n += 1
    return "\n".join(lines).lstrip() + "\n", clauses


def run(quick: bool) -> list[Row]:
    marks = 35 if quick else 200
    script, clauses = guided_script(marks)
    with tempfile.TemporaryDirectory(prefix="cutroom-bench-p8-") as tmp:
        work = Path(tmp)
        env = environment(prefect_home(work))
        (work / "guided.txt").write_text(script)
        (work / "clauses.json").write_text(json.dumps([[c.text, c.pause_s] for c in clauses]))

        out, log = work / "out", work / "cutroom.log"
        command = [*CUTROOM, "longform", str(work / "guided.txt"), "--out", str(out), "--id", CAMPAIGN_ID]
        cutroom = check(run_child(command, env, log), "cutroom longform", log)
        folder = out / "campaigns" / CAMPAIGN_ID / "longform"
        sheet = json.loads((folder / "manifest.json").read_text())["segments"]
        if [s["pause_after_s"] for s in sheet] != [c.pause_s for c in clauses]:
            raise RuntimeError("Cutroom's timing sheet holds other pauses than the script was written with")
        ours = _figures(cutroom, folder / "master.wav", clauses, [s["end_s"] for s in sheet])

        hand, log = work / "by-hand", work / "by-hand.log"
        command = [sys.executable, "-m", "bench.p8_longform", str(work / "clauses.json"), str(hand)]
        by_hand = check(run_child(command, env, log), "the hand-made master", log)
        theirs = _figures(by_hand, hand / "master.wav", clauses, _clause_ends(hand, clauses))

    met = (
        ours["× real time"] <= MAX_REAL_TIME
        and ours["outside ±60 ms"] == 0
        and ours["pauses measured"] == len(clauses)
    )
    return [
        Row(
            subject=f"{ours['audio min']:.1f} min guided script, {marks} pause marks, {len(clauses)} pauses",
            figures=ours,
            baselines={"each clause spoken, one ffmpeg concat": theirs},
            ratios={
                "wall": ratio(ours["wall s"], theirs["wall s"]),
                "peak RSS": ratio(ours["peak RSS MiB"], theirs["peak RSS MiB"]),
            },
            target=TARGET,
            met=met,
        )
    ]


def _figures(done: Finished, master: Path, clauses: list[Clause], ends_s: list[float]) -> dict[str, float]:
    """A way's run and its master's pauses: each expected pause is the silence around its middle."""
    pcm, rate = _decoded(master)
    found = _silences(pcm, rate)
    errors_ms = []
    for clause, end in zip(clauses, ends_s, strict=True):
        middle = round((end + clause.pause_s / 2) * rate)
        k = int(np.searchsorted(found[:, 0], middle, side="right")) - 1
        if k >= 0 and found[k, 1] >= middle:
            errors_ms.append(((found[k, 1] - found[k, 0]) / rate - clause.pause_s) * 1000)
    audio_s = len(pcm) / rate
    worst = max(map(abs, errors_ms), default=0.0)
    return {
        "audio min": audio_s / 60,
        "wall s": done.timing.wall_s,
        "× real time": done.timing.wall_s / audio_s,
        "cpu s": done.timing.cpu_s,
        "peak RSS MiB": done.peak_rss_mib,
        "pauses measured": len(errors_ms),
        "worst error ms": worst,
        "outside ±60 ms": len(clauses) - sum(1 for e in errors_ms if abs(e) <= TOLERANCE_MS),
    }


def _decoded(master: Path) -> tuple[np.ndarray, int]:
    """The master's samples as ffmpeg decodes them (mono 16-bit at its own rate), and that rate."""
    with wave.open(str(master), "rb") as wav:
        rate = wav.getframerate()
    args = [ffmpeg_exe(), "-v", "error", "-i", str(master), "-f", "s16le", "-ac", "1", "-ar", str(rate), "-"]
    return np.frombuffer(subprocess.run(args, capture_output=True, check=True).stdout, "<i2"), rate


def _silences(pcm: np.ndarray, rate: int) -> np.ndarray:
    """Every run of at least DETECT_MIN_S with no sample above SILENCE_DBFS, as rows of (first, one-past-last)
    sample; the runs before the first and after the last sound included."""
    threshold = 32768 * 10 ** (SILENCE_DBFS / 20)
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > threshold)
    starts = np.concatenate(([0], loud + 1))
    ends = np.concatenate((loud, [len(pcm)]))
    keep = ends - starts >= DETECT_MIN_S * rate
    return np.column_stack((starts[keep], ends[keep]))


def _clause_ends(folder: Path, clauses: list[Clause]) -> list[float]:
    """Where each clause of the hand-made master ends: its spoken file's length after the clauses and pauses
    before it."""
    at, ends = 0.0, []
    for n, clause in enumerate(clauses):
        with wave.open(str(folder / f"clause-{n:03d}.wav"), "rb") as wav:
            at += wav.getnframes() / wav.getframerate()
        ends.append(at)
        at += clause.pause_s
    return ends


def by_hand(clauses_json: Path, folder: Path) -> None:
    """The plain way: speak each clause with the same local voice, then one ffmpeg run that pads each with
    silence of its marked length and concatenates them; nothing trimmed, nothing measured."""
    from cutroom.assets import AssetKind, AssetSpec
    from providers.local.speech import LocalSpeech

    folder.mkdir(parents=True)
    voice = LocalSpeech()
    clauses = [Clause(text, pause) for text, pause in json.loads(clauses_json.read_text())]
    inputs, graph = [], []
    for n, clause in enumerate(clauses):
        spec = AssetSpec(kind=AssetKind.speech, provider="local", model="espeak-ng", prompt=clause.text)
        path = folder / f"clause-{n:03d}.wav"
        path.write_bytes(voice.render(spec).data)
        inputs += ["-i", str(path)]
        graph.append(f"[{n}:a]apad=pad_dur={clause.pause_s:g}[a{n}]")
    joined = "".join(f"[a{n}]" for n in range(len(clauses)))
    graph.append(f"{joined}concat=n={len(clauses)}:v=0:a=1[out]")
    run_ffmpeg(
        [*inputs, "-filter_complex", ";".join(graph), "-map", "[out]", str(folder / "master.wav")],
        what="joining the clauses",
    )


if __name__ == "__main__":
    by_hand(Path(sys.argv[1]), Path(sys.argv[2]))
