"""Pauses in 16-bit PCM: clauses stitched with exact silences between them, and the silences of a master measured
back from the sound alone.

One threshold decides what is speech, both when a clause is trimmed and when the master is measured, so a pause
is the same thing to the stitcher and to the validator.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from pydantic import BaseModel, Field, computed_field

#: Below this loudness a window is silence: espeak pads with exact zeros; a vendor's breath noise sits lower still.
SILENCE_DBFS = -45.0
_THRESHOLD = 32768 * 10 ** (SILENCE_DBFS / 20)
#: Loudness is judged over windows this long (their RMS), never by a lone sample: the noise a codec leaves around
#: the words (an MP3's, near -50 dBFS with peaks above the line) is heard as silence, and must be trimmed as such.
WINDOW_S = 0.005
#: The shortest quiet stretch counted as a pause: longer than the gaps inside a clause (commas, stops, about
#: 0.2 s at most), shorter than the shortest pause a script may ask for (0.3 s).
DETECT_MIN_S = 0.25
TOLERANCE_S = 0.06


class TimedSegment(BaseModel):
    """One clause in the master: from its first to its last sound, then its pause."""

    scene: str
    text: str
    start_s: float
    end_s: float
    pause_after_s: float


class TimingSheet(BaseModel):
    sample_rate: int
    duration_s: float
    lead_in_s: float = 0.0
    segments: list[TimedSegment]


class Clause(NamedTuple):
    """A spoken clause ready to stitch: its samples (at the master's rate) and the silence that follows it."""

    scene: str
    text: str
    pcm: np.ndarray
    pause_after_s: float


def _sound_edges(pcm: np.ndarray, rate: int) -> list[tuple[int, int]]:
    """The stretches of sound, as (first, one-past-last) sample: runs of windows louder than the silence threshold,
    each edge then put on its outermost sample above it, so a pause ends where the words do, to the sample."""
    size = max(1, round(WINDOW_S * rate))
    padded = np.zeros(-(-len(pcm) // size) * size, np.float64)
    padded[: len(pcm)] = pcm
    windows = padded.reshape(-1, size)
    loud = np.flatnonzero(np.sqrt((windows**2).mean(axis=1)) > _THRESHOLD)
    if not loud.size:
        return []
    breaks = np.flatnonzero(np.diff(loud) > 1)
    firsts, lasts = loud[np.concatenate(([0], breaks + 1))], loud[np.concatenate((breaks, [len(loud) - 1]))]

    def above(window: int) -> np.ndarray:  # a loud window has a sample above the threshold
        return np.flatnonzero(np.abs(windows[window]) > _THRESHOLD)

    return [
        (int(first) * size + int(above(first)[0]), int(last) * size + int(above(last)[-1]) + 1)
        for first, last in zip(firsts, lasts, strict=True)
    ]


def speech_span(pcm: np.ndarray, rate: int) -> tuple[int, int] | None:
    """First and one-past-last sample of the clause's sound; None for a clause with no sound at all."""
    sounds = _sound_edges(pcm, rate)
    return (sounds[0][0], sounds[-1][1]) if sounds else None


def stitch(clauses: list[Clause], rate: int, lead_in_s: float = 0.0) -> tuple[np.ndarray, TimingSheet]:
    """One track: each clause's speech, its own leading and trailing silence trimmed, then its pause in exact
    zero samples. Trimming both ends is what makes the pause exact: the silence a voice leaves before or after
    its words would otherwise add to the pause, by a different amount for every clause and vendor."""
    parts = [np.zeros(round(lead_in_s * rate), np.int16)]
    segments = []
    at = len(parts[0])
    for clause in clauses:
        span = speech_span(clause.pcm, rate)
        if span is None:
            raise ValueError(f"the voice made no sound for {clause.text[:60]!r}")
        speech = clause.pcm[span[0] : span[1]]
        pause = np.zeros(round(clause.pause_after_s * rate), np.int16)
        segments.append(
            TimedSegment(
                scene=clause.scene,
                text=clause.text,
                start_s=at / rate,
                end_s=(at + len(speech)) / rate,
                pause_after_s=clause.pause_after_s,
            )
        )
        parts += [speech.astype(np.int16), pause]
        at += len(speech) + len(pause)
    track = np.concatenate(parts)
    return track, TimingSheet(
        sample_rate=rate, duration_s=len(track) / rate, lead_in_s=lead_in_s, segments=segments
    )


def silences(pcm: np.ndarray, rate: int) -> list[tuple[float, float]]:
    """Every quiet stretch of at least DETECT_MIN_S, as (start, end) in seconds, from the sound alone; the stretches
    before the first and after the last sound included."""
    sounds = _sound_edges(pcm, rate)
    quiet = zip([0, *(end for _, end in sounds)], [*(start for start, _ in sounds), len(pcm)], strict=True)
    return [(a / rate, b / rate) for a, b in quiet if b - a >= DETECT_MIN_S * rate]


class PauseCheck(BaseModel):
    scene: str
    after: str = Field(description="The words the pause follows; empty for the lead-in.")
    target_s: float
    measured_s: float | None = Field(description="None when no silence was found where the pause belongs.")
    delta_s: float | None
    ok: bool


class PauseReport(BaseModel):
    tolerance_s: float = TOLERANCE_S
    pauses: list[PauseCheck]
    unexpected: list[tuple[float, float]] = Field(
        default_factory=list,
        description="Silences the script did not ask for (a voice's own long breath), as (start, end) seconds.",
    )

    @computed_field
    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.pauses)

    @computed_field
    @property
    def worst_s(self) -> float | None:
        """The largest |measured - target| of the pauses found."""
        deltas = [abs(p.delta_s) for p in self.pauses if p.delta_s is not None]
        return max(deltas, default=None)


def check_pauses(sheet: TimingSheet, pcm: np.ndarray, rate: int) -> PauseReport:
    """Measure every pause the sheet expects in the master's sound, and say which miss their target.

    The sheet only says where to look (a pause belongs after its clause's end); how long the silence there is
    comes from the samples.
    """
    found = silences(pcm, rate)
    expected = [("", "", 0.0, sheet.lead_in_s)] if sheet.lead_in_s else []
    expected += [(s.scene, s.text, s.end_s, s.pause_after_s) for s in sheet.segments if s.pause_after_s]
    matched: set[int] = set()
    checks = []
    for scene, after, start, target in expected:
        middle = start + target / 2
        hit = next((i for i, (a, b) in enumerate(found) if a <= middle <= b), None)
        measured = None if hit is None else found[hit][1] - found[hit][0]
        if hit is not None:
            matched.add(hit)
        delta = None if measured is None else measured - target
        ok = delta is not None and abs(delta) <= TOLERANCE_S
        checks.append(
            PauseCheck(scene=scene, after=after, target_s=target, measured_s=measured, delta_s=delta, ok=ok)
        )
    unexpected = [span for i, span in enumerate(found) if i not in matched]
    return PauseReport(pauses=checks, unexpected=unexpected)
