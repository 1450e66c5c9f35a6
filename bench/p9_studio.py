"""P9: the script studio — a 20-scene script (quick: 6) on ElevenLabs and HeyGen against its critical-path lower
bound, and what a second run sends the vendors, beside the plain scene-by-scene loop.

Every scene is a talking photo (every third one a dialogue of two voices, which Eleven v3 speaks in one request), so
each is ElevenLabs speech → a HeyGen upload of that audio → a HeyGen video. Cutroom runs as `cutroom script` does, a
child process on the simulator (bench.studio: the command itself cannot name ElevenLabs), then once more on the same
out folder and Prefect home; the baseline is `python -m bench.plain_studio`, the same requests scene by scene with
httpx. Each runs against a simulator of its own at the campaigns' latency scale, so neither is served the other's
renders (each scene's audio and video is a shape of its own, rendered on first request).

Wall is the vendor phase, as P1's: from the first vendor submit to the last output download in the simulator's
request log; the whole process's wall is shown beside it. The lower bound takes the jobs' running times from the
simulator's job log (bench.harness.two_stage_bound): the busier vendor's summed job time ÷ Cutroom's cap for it,
after the shortest job that must precede it, or the shortest speech then the longest video. Uploads are not jobs
in the log and count as nothing, so the bound stays a lower one; the log does not say which scene a job was for,
so the chain is bounded from the shortest and longest jobs rather than scene by scene.

Where Cutroom's vendor phase goes beyond the bound is read from the same logs on HeyGen's clock: until its first
video starts, its slots idle between its first and last video's start, its video time ÷ its cap, and after its
last video ends (`Observed.where`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx

from bench.campaigns import (
    LATENCY_SCALE,
    Finished,
    bench_world,
    check,
    environment,
    prefect_home,
    run_child,
)
from bench.harness import (
    Row,
    download_times,
    ratio,
    running_times,
    submit_times,
    two_stage_bound,
    vendor_phase,
)
from providers import registry
from simulator.heygen import TALKING_PHOTOS

TITLE = "Script studio wall time against its critical-path lower bound, and a second run's vendor calls"
TARGET = "≤ 1.10× bound; 0 uploads and submits on a second run"
LIMIT = 1.10
SPEECH, AVATAR = "elevenlabs", "heygen"
UPLOAD = "/heygen/upload/v1/asset"
STUDIO = [sys.executable, "-m", "bench.studio"]
PLAIN_STUDIO = [sys.executable, "-m", "bench.plain_studio"]
PLACES = (
    "the harbour wall", "the old lighthouse", "the fish market", "the tide pools", "the chapel steps",
    "the ferry slip", "the dune path", "the boat sheds", "the salt marsh", "the pier cafe", "the cliff garden",
    "the rope walk", "the lifeboat station", "the sea pool", "the net lofts", "the coastguard cottages",
    "the shell beach", "the mill stream", "the watch tower", "the long strand",
)  # fmt: skip


def scene_script(scenes: int) -> str:
    """A walking tour of `scenes` talking-photo scenes, each line its own words (nothing is spoken twice)."""
    blocks = []
    for n in range(1, scenes + 1):
        place = PLACES[(n - 1) % len(PLACES)]
        lines = [f'Dialogue (VO): "Stop {n} of the tour is {place}, a short walk from the last."']
        if n % 3 == 0:
            lines.append(f'Dialogue (Maya): "Meet me by {place} at stop {n}."')
        photo = TALKING_PHOTOS[n % len(TALKING_PHOTOS)]
        blocks.append("\n".join([f"[Scene {n} – {place.title()}]", *lines, f"Talking photo: heygen:{photo}"]))
    return "\n\n".join(blocks) + "\n"


def lower_bound(jobs: list[dict[str, Any]]) -> float:
    caps = tuple(int(registry.limits(name).concurrency or 1) for name in (SPEECH, AVATAR))
    return two_stage_bound(running_times(jobs, SPEECH), running_times(jobs, AVATAR), caps)


class Observed:
    """A child run to its end, and what the simulator logged while it ran."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, url: str):
        self.finished: Finished = check(run_child(args, env, log), " ".join(args[:3]), log)
        start, end = self.finished.started, self.finished.ended
        with httpx.Client(base_url=url, timeout=30) as http:
            self.requests = [r for r in http.get("/_sim/requests").json() if start <= r["time"] <= end]
            self.jobs = [j for j in http.get("/_sim/jobs").json() if start <= j["created"] <= end]

    @property
    def uploads(self) -> int:
        return sum(r["method"] == "POST" and r["path"] == UPLOAD for r in self.requests)

    @property
    def submits(self) -> int:
        """Vendor POSTs that create a job: every one but an upload (the simulator's own controls are no vendor's)."""
        return sum(
            r["method"] == "POST" and r["vendor"] in (SPEECH, AVATAR) and r["path"] != UPLOAD
            for r in self.requests
        )

    def figures(self) -> dict[str, float]:
        phase, bound = vendor_phase(self.requests), lower_bound(self.jobs)
        return {
            "wall s": phase,
            "bound s": bound,
            "÷ bound": phase / bound,
            "total s": self.finished.timing.wall_s,
            "vendor jobs": len(self.jobs),
        }

    def where(self) -> dict[str, float]:
        """Where the vendor phase goes, on HeyGen's clock (the stage that binds): until its first video starts;
        its slots left idle between its first and its last video's start, in wall seconds (slot-seconds ÷ its
        cap); its summed video time ÷ its cap (the bound's own term); and after its last video ends."""
        videos = [
            (j.get("started") or j["created"], j["finished"]) for j in self.jobs if j["vendor"] == AVATAR
        ]
        cap = int(registry.limits(AVATAR).concurrency or 1)
        first, last = min(start for start, _ in videos), max(start for start, _ in videos)
        return {
            "before 1st video s": first - min(submit_times(self.requests)),
            "HeyGen slots idle s": idle_slot_seconds(videos, cap, first, last) / cap,
            "HeyGen video s ÷ cap": sum(end - start for start, end in videos) / cap,
            "after last video s": max(download_times(self.requests)) - max(end for _, end in videos),
        }


def idle_slot_seconds(jobs: list[tuple[float, float]], cap: int, start: float, end: float) -> float:
    """Slot-seconds of `cap` slots that no job held between start and end, jobs given as (start, end)."""
    moments = sorted({start, end, *(t for job in jobs for t in job if start < t < end)})
    idle = 0.0
    for a, b in zip(moments, moments[1:], strict=False):
        held = sum(s <= a and e >= b for s, e in jobs)
        idle += max(cap - held, 0) * (b - a)
    return idle


def run(quick: bool) -> list[Row]:
    scenes = 6 if quick else 20
    with bench_world("p9", LATENCY_SCALE) as (work, url):
        script = work / "studio.txt"
        script.write_text(scene_script(scenes))
        env = environment(prefect_home(work))
        command = [*STUDIO, str(script), str(work / "out")]
        first = Observed(command, env, work / "first.log", url)
        second = Observed(command, env, work / "second.log", url)
    with bench_world("p9-plain", LATENCY_SCALE) as (work, url):
        script = work / "studio.txt"
        script.write_text(scene_script(scenes))
        plain = Observed(
            [*PLAIN_STUDIO, str(script), str(work / "out")],
            environment(work / "prefect"),
            work / "plain.log",
            url,
        )
    ours, theirs = first.figures(), plain.figures()
    again = {"2nd run s": second.finished.timing.wall_s, "2nd run uploads": second.uploads,
             "2nd run submits": second.submits}  # fmt: skip
    return [
        Row(
            subject=f"{scenes} talking-photo scenes (ElevenLabs speech, HeyGen upload and video), "
            f"latency × {LATENCY_SCALE}",
            figures={"scenes": scenes, **ours, **first.where(), "uploads": first.uploads, **again},
            baselines={"plain scene-by-scene httpx": theirs},
            ratios={
                "wall vs bound": ours["÷ bound"],
                "wall vs plain": ratio(ours["wall s"], theirs["wall s"]),
            },
            target=TARGET,
            met=ours["÷ bound"] <= LIMIT and again["2nd run uploads"] == 0 and again["2nd run submits"] == 0,
        )
    ]
