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

A last row makes the campaign as a team does (bench/team.py: `cutroom server`, a bucket, process workers), its
stories on a pool (CUTROOM_STORY_POOL) of one worker and then of two — a run per story, then two runs of half
the stories each (CUTROOM_STORY_BATCH) — beside the same campaign with its stories in-process on that
server and bucket, each held to the same bound; the workers' process trees are weighed meanwhile, for how many
stories one worker process holds in 1 GiB.
"""

from __future__ import annotations

import json
import math
from typing import Any

from bench.campaigns import (
    LATENCY_SCALE,
    campaign_size,
    caps,
    check,
    cutroom_run,
    made,
    run_child,
    shared_world,
    vendor_log,
    write_brief,
)
from bench.harness import Row, ratio, running_times, two_stage_bound, vendor_phase
from bench.team import Load, Team, team, weighed, worker
from cutroom.storage import open_storage

TITLE = "Campaign wall time against its critical-path lower bound"
TARGET = "≤ 1.05 × the lower bound at 50 and at 500 stories"
#: The most the stories phase may take, × its lower bound, by campaign size (smaller ones are held to 50's).
LIMITS = {50: 1.05, 500: 1.05}
POOL_TARGET = "≤ 1.10 × the lower bound on a 2-worker story pool, beside the in-process run"
POOL_LIMIT = 1.10
POOL = "bench-stories"
#: Story runs a worker takes at once: as many as a campaign starts at once (CUTROOM_STORY_CONCURRENCY's
#: default), so one worker could take them all.
WORKER_LIMIT = 16
#: The memory a worker process and the stories it holds may reach.
WORKER_MEMORY_MIB = 1024


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


def pool_size(quick: bool) -> int:
    """Stories in the pool rows: 20, the size the team-scale issue names; 10 for a quick look."""
    return 10 if quick else 20


def run(quick: bool) -> list[Row]:
    return [*in_process(quick), on_pool(pool_size(quick))]


def in_process(quick: bool) -> list[Row]:
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


def on_pool(stories: int) -> Row:
    """The bench campaign with its stories on a pool (CUTROOM_STORY_POOL) of one worker, then of two, beside the
    same campaign with its stories in its own process; all three on one team server and bucket (bench/team.py),
    so only where the stories run differs. Each worker's process tree is weighed meanwhile."""
    work, _ = shared_world()
    folder = work / f"team-{stories}"
    folder.mkdir()
    limits = json.dumps({"luma": {"per_minute": 60 / LATENCY_SCALE}})
    batch = math.ceil(stories / 2)  # two runs, as many as workers (either may take both)
    with team(folder, CUTROOM_PROVIDER_LIMITS=limits) as shared:
        runs = {"in process": campaign(shared, stories, "in-process")}
        with worker(shared, POOL, "machine-a", WORKER_LIMIT) as a:
            with weighed({"machine-a": a}) as one:
                runs["1 worker"] = campaign(shared, stories, "one-worker", POOL)
            with worker(shared, POOL, "machine-b", WORKER_LIMIT) as b:
                with weighed({"machine-a": a, "machine-b": b}) as two:
                    runs["2 workers"] = campaign(shared, stories, "two-workers", POOL)
                with weighed({"machine-a": a, "machine-b": b}) as batched:
                    runs["2 workers, batches"] = campaign(shared, stories, "two-batches", POOL, batch)
    ours = runs.pop("2 workers, batches")
    memory = held_stories(one["machine-a"])
    return Row(
        subject=f"{stories} email stories on a story pool of 1 and of 2 process workers (cutroom server on SQLite, "
        f"SeaweedFS), a run per story, then on 2 in runs of {batch} stories, latency × {LATENCY_SCALE}",
        figures={
            **ours,
            **{f"{name} peak RSS MiB": load.peak_mib for name, load in batched.items()},
            **{f"{name} runs": len(load.stories_mib) for name, load in batched.items()},
        },
        baselines={
            "2 workers, a run per story": {
                **runs["2 workers"],
                **{f"{name} peak RSS MiB": load.peak_mib for name, load in two.items()},
                **{f"{name} story runs": len(load.stories_mib) for name, load in two.items()},
                **{f"{name} held at once": load.held for name, load in two.items()},
            },
            "1 worker, a run per story": {
                **runs["1 worker"],
                "peak RSS MiB": one["machine-a"].peak_mib,
                **memory,
            },
            "in process": runs["in process"],
        },
        ratios={
            "2 workers, batches vs bound": ours["÷ bound"],
            "2 workers, a run per story vs bound": runs["2 workers"]["÷ bound"],
            "1 worker vs bound": runs["1 worker"]["÷ bound"],
            "in process vs bound": runs["in process"]["÷ bound"],
            "stories batches vs a run per story": ratio(ours["stories s"], runs["2 workers"]["stories s"]),
            "stories batches vs in process": ratio(ours["stories s"], runs["in process"]["stories s"]),
        },
        target=POOL_TARGET,
        met=ours["÷ bound"] <= POOL_LIMIT,
    )


def campaign(
    shared: Team, stories: int, name: str, pool: str | None = None, batch: int = 1
) -> dict[str, float]:
    """One `cutroom run` of the bench campaign on the team's server and bucket, its stories on `pool` if named,
    `batch` stories to a run: stories phase, the bound, total wall; an error unless every story completed."""
    campaign_id = f"{name}-{stories}"
    log = shared.folder / f"{campaign_id}.log"
    env = {**shared.env, **({"CUTROOM_STORY_POOL": pool, "CUTROOM_STORY_BATCH": str(batch)} if pool else {})}
    command = cutroom_run(
        write_brief(shared.folder, stories, campaign_id), f"{shared.location}/{campaign_id}"
    )
    done = check(run_child(command, env, log), f"the {name} campaign", log)
    manifest = json.loads(
        open_storage(f"{shared.location}/{campaign_id}").read_bytes(f"campaigns/{campaign_id}/manifest.json")
    )
    if manifest["status"] != "complete":
        tail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"the {name} campaign ended {manifest['status']}; the end of its log:\n{tail}")
    requests, jobs = vendor_log(shared_world()[1], done)
    phase, bound = vendor_phase(requests), lower_bound(jobs)
    return {"stories s": phase, "bound s": bound, "÷ bound": phase / bound, "total s": done.timing.wall_s}


def held_stories(load: Load) -> dict[str, float]:
    """How many stories one worker process holds under WORKER_MEMORY_MIB. A process worker runs each story it
    holds as a process of its own, so its tree grows by a story run per story held: at the tree's peak, what it
    held beyond the worker's own RSS ÷ the stories it held then is the growth per story; the budget left after
    the worker ÷ that growth is the stories it holds. RSS summed over processes counts the pages they share (the
    Python libraries) in each, so the figure errs low."""
    growth = (load.peak_mib - load.own_mib) / load.held_at_peak
    return {
        "worker MiB": load.own_mib,
        "stories held at peak": load.held_at_peak,
        "MiB per held story": growth,
        "story run MiB, largest": max(load.stories_mib.values()),
        "stories per worker under 1 GiB": math.floor((WORKER_MEMORY_MIB - load.own_mib) / growth),
    }
