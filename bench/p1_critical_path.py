"""P1: a campaign's wall time against its critical-path lower bound, beside plain asyncio and a sequential loop.

`cutroom run` makes the bench campaign (bench/campaigns.py) against the simulator; `python -m bench.plain` does
the same work without Prefect, all stories at once and then story by story. Each is timed over its stories
phase — from its first vendor submit to its last vendor download, both in the simulator's request log — so
Prefect's start-up and the (constant, 30 s) reel are outside the ratio; total wall times are shown beside.

The lower bound takes the jobs' own running times from the simulator's job log: no schedule can beat
  - the busiest vendor: the sum of its jobs' times ÷ its concurrency cap, after the shortest job that must come
    first (a clip needs its keyframe), and
  - the longest chain: the shortest keyframe, then the longest clip.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx

from bench.campaigns import (
    bench_world,
    caps,
    check,
    cutroom_run,
    environment,
    run_child,
    write_brief,
)
from bench.harness import Row, ratio

TITLE = "Campaign wall time against its critical-path lower bound"
TARGET = "≤ 1.10 × the lower bound at 50 stories"
LIMIT = 1.10
#: Runway's gen4_turbo runs ≈ 30 s for real; × 0.05 it is ≈ 1.5 s, still 10× a poll round trip.
LATENCY_SCALE = 0.05
PYTHON_PLAIN = [sys.executable, "-m", "bench.plain"]


def lower_bound(jobs: list[dict[str, Any]]) -> float:
    running: dict[str, list[float]] = {"luma": [], "runway": []}
    for job in jobs:
        running[job["vendor"]].append(job["finished"] - (job.get("started") or job["created"]))
    keyframes, clips, cap = running["luma"], running["runway"], caps()
    return max(
        min(keyframes) + sum(clips) / cap["runway"],
        sum(keyframes) / cap["luma"] + min(clips),
        min(keyframes) + max(clips),
    )


def stories_phase(requests: list[dict[str, Any]]) -> float:
    """From the first vendor submit to the last output download."""
    submits = [r["time"] for r in requests if r["method"] == "POST" and "/_sim/" not in r["path"]]
    downloads = [r["time"] for r in requests if "/_media/" in r["path"]]
    return max(downloads) - min(submits)


def vendor_environment(prefect_home: Path) -> dict[str, str]:
    """Vendor rate caps scaled like the latencies, so the caps that bind are the concurrency ones."""
    per_minute = {"luma": {"per_minute": 60 / LATENCY_SCALE}}
    return environment(prefect_home, CUTROOM_PROVIDER_LIMITS=json.dumps(per_minute))


def measure(stories: int, work: Path, url: str, quick: bool) -> dict[str, dict[str, float]]:
    """Each way of making the campaign, run in turn: stories phase, total wall, the bound, jobs."""
    env = vendor_environment(work / "prefect")
    http = httpx.Client(base_url=url, timeout=30)
    runs = {
        "Cutroom": (lambda brief, out: cutroom_run(brief, out), {}),
        "plain asyncio": (lambda brief, out: [*PYTHON_PLAIN, str(brief), str(out)], {}),
        "sequential loop": (lambda brief, out: [*PYTHON_PLAIN, str(brief), str(out), "--sequential"], {}),
    }
    if not quick:  # what cross-process vendor caps cost: two API round trips on every job's critical path
        runs["Cutroom with global limits"] = (runs["Cutroom"][0], {"CUTROOM_GLOBAL_LIMITS": "true"})
    # The first run also creates Prefect's database: its start-up is longer, but outside the stories phase.
    figures = {}
    for label, (command, extra) in runs.items():
        slug = "-".join(label.split()[:2]).lower()
        brief = write_brief(work, stories, f"bench-{slug}")
        log = work / f"{slug}.log"
        done = check(run_child(command(brief, work / slug), {**env, **extra}, log), label, log)
        requests = [r for r in http.get("/_sim/requests").json() if done.started <= r["time"] <= done.ended]
        jobs = [j for j in http.get("/_sim/jobs").json() if done.started <= j["created"] <= done.ended]
        figures[label] = {
            "stories s": stories_phase(requests),
            "bound s": lower_bound(jobs),
            "total s": done.timing.wall_s,
            "vendor jobs": len(jobs),
        }
    return figures


def run(quick: bool) -> list[Row]:
    stories = 8 if quick else 50
    with bench_world("p1", LATENCY_SCALE) as (work, url):
        figures = measure(stories, work, url, quick)
    ours = figures.pop("Cutroom")
    bound = ours["stories s"] / ours["bound s"]
    return [
        Row(
            subject=f"{stories} email stories (Luma keyframe, Runway clip, voice, score), latency × {LATENCY_SCALE}",
            figures={**ours, "÷ bound": bound},
            baselines={
                name: {**values, "÷ bound": values["stories s"] / values["bound s"]}
                for name, values in figures.items()
            },
            ratios={
                "stories vs bound": bound,
                **{
                    f"stories vs {name}": ratio(ours["stories s"], v["stories s"])
                    for name, v in figures.items()
                },
            },
            target=TARGET,
            met=bound <= LIMIT,
        )
    ]
