"""P7: scale — wall time per story and peak memory from 10 to 100 to 1000 stories (quick: 5 → 15).

Latencies are cut to × 0.005 and both vendors' caps raised to 16 (in Cutroom and in the simulator), so vendor
time no longer hides what grows with the campaign: orchestration, the ledger, the plan, the manifest and report.
Peak RSS is the most the `cutroom run` process tree (the CLI, Prefect's server) holds at once, sampled.
"""

from __future__ import annotations

import json

import httpx

from bench.campaigns import (
    bench_world,
    check,
    cutroom_run,
    environment,
    prefect_home,
    run_child,
    write_brief,
)
from bench.harness import Row, ratio

TITLE = "Scale: wall time per story and peak RSS, 10 → 100 → 1000 stories"
GROWTH, RSS_MIB = 1.2, 768
TARGET = f"per-story time growing ≤ {GROWTH:g}× from the smallest to the largest, peak RSS ≤ {RSS_MIB} MiB"
LATENCY_SCALE = 0.005
CAP = 16


def run(quick: bool) -> list[Row]:
    sizes = (5, 15) if quick else (10, 100, 1000)
    caps = {name: {"concurrency": CAP, "per_minute": None} for name in ("luma", "runway")}
    figures: dict[int, dict[str, float]] = {}
    with bench_world("p7", LATENCY_SCALE) as (work, url):
        httpx.post(
            f"{url}/runway/_sim/limits",
            json={"concurrency": CAP, "daily_generations": None, "credit_balance": 10**9},
        ).raise_for_status()
        env = environment(
            prefect_home(work), CUTROOM_PROVIDER_LIMITS=json.dumps(caps), CUTROOM_STORY_CONCURRENCY=str(CAP)
        )
        for stories in sizes:
            log = work / f"scale-{stories}.log"
            brief = write_brief(work, stories, f"scale-{stories}")
            done = check(
                run_child(cutroom_run(brief, work / f"out-{stories}"), env, log), f"{stories} stories", log
            )
            figures[stories] = {
                "wall s": done.timing.wall_s,
                "s/story": done.timing.wall_s / stories,
                "cpu s/story": done.timing.cpu_s / stories,
                "peak RSS MiB": done.peak_rss_mib,
                **{f"peak RSS MiB, {part}": mib for part, mib in sorted(done.peak_parts.items())},
            }
    smallest, largest = figures[sizes[0]], figures[sizes[-1]]
    growth = ratio(largest["s/story"], smallest["s/story"])
    peak = max(f["peak RSS MiB"] for f in figures.values())
    return [
        Row(
            subject=f"email stories at {' → '.join(map(str, sizes))}, latency × {LATENCY_SCALE}, caps {CAP}",
            figures={f"{n} stories {k}": v for n, f in figures.items() for k, v in f.items()},
            baselines={},
            ratios={f"s/story {sizes[-1]} vs {sizes[0]}": growth},
            target=TARGET,
            met=growth is not None and growth <= GROWTH and peak <= RSS_MIB,
        )
    ]
