"""P1: a campaign's wall time against its critical-path lower bound, beside plain asyncio and a sequential loop.

`cutroom run` makes the bench campaign (bench/campaigns.py) against the simulator; `python -m bench.plain` does
the same work without Prefect, all stories at once and then story by story. Each is timed over its stories
phase — from its first vendor submit to its last vendor download, both in the simulator's request log — so
Prefect's start-up and the (constant, 30 s) reel are outside the ratio; total wall times are shown beside.
P2 reads the same runs (bench.campaigns.made). The full run also makes 500 stories, plain asyncio beside.

The lower bound takes the jobs' own running times from the simulator's job log: no schedule can beat
  - the busiest vendor: the sum of its jobs' times ÷ its concurrency cap, after the shortest job that must come
    first (a clip needs its keyframe), and
  - the longest chain: the shortest keyframe, then the longest clip.
"""

from __future__ import annotations

from typing import Any

from bench.campaigns import LATENCY_SCALE, campaign_size, caps, made
from bench.harness import Row, ratio, running_times, two_stage_bound, vendor_phase

TITLE = "Campaign wall time against its critical-path lower bound"
TARGET = "≤ 1.10 × the lower bound at 50 stories, ≤ 1.25 at 500"
#: The most the stories phase may take, × its lower bound, by campaign size (smaller ones are held to 50's).
LIMITS = {50: 1.10, 500: 1.25}


def lower_bound(jobs: list[dict[str, Any]]) -> float:
    cap = caps()
    return two_stage_bound(
        running_times(jobs, "luma"), running_times(jobs, "runway"), (cap["luma"], cap["runway"])
    )


def measure(stories: int, ways: list[str]) -> dict[str, dict[str, float]]:
    """Each way of making the campaign, run in turn: stories phase, total wall, the bound, jobs."""
    figures = {}
    for way in ways:
        run = made(way, stories)
        figures[way] = {
            "stories s": vendor_phase(run.requests),
            "bound s": lower_bound(run.jobs),
            "total s": run.finished.timing.wall_s,
            "vendor jobs": len(run.jobs),
        }
    return figures


def run(quick: bool) -> list[Row]:
    baselines = ["plain asyncio", "sequential loop"]
    if quick:
        sizes = {campaign_size(quick): baselines}
    else:  # a sequential loop over 500 stories alone would take ≈ 25 min: at 500, plain asyncio only
        sizes = {campaign_size(quick): [*baselines, "Cutroom with global limits"], 500: ["plain asyncio"]}
    rows = []
    for stories, ways in sizes.items():
        figures = measure(stories, ["Cutroom", *ways])
        ours = figures.pop("Cutroom")
        bound = ours["stories s"] / ours["bound s"]
        rows.append(
            Row(
                subject=f"{stories} email stories (Luma keyframe, Runway clip, voice, score), "
                f"latency × {LATENCY_SCALE}",
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
                met=bound <= LIMITS.get(stories, LIMITS[50]),
            )
        )
    return rows
