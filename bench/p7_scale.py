"""P7: scale — wall time per story and peak memory from 10 to 100 to 1000 stories (quick: 5 → 15), and a
10,000-story campaign on a story pool (quick: 60), and what a story run late in it pays to open the campaign's
ledger (bench/ledger_open.py).

Latencies are cut to × 0.005 and both vendors' caps raised to 16 (in Cutroom and in the simulator), so vendor
time no longer hides what grows with the campaign: orchestration, the ledger, the plan, the manifest and report.
Peak RSS is the most the `cutroom run` process tree (the CLI, Prefect's server) holds at once, sampled.

The pool row makes the largest campaign as a team would (bench/team.py: `cutroom server` on SQLite, SeaweedFS,
two process workers taking one run at a time), POOL_SIZES' stories to a run (CUTROOM_STORY_BATCH), and weighs each
process, as the issue asks of the pool ("per-process RSS"): the campaign's Python and each ffmpeg it starts, the
server, each worker and each process under it; the campaign's, the workers' and each run's trees are reported too.
"""

from __future__ import annotations

import json
from pathlib import Path

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
from bench.harness import Row, failed_row, ratio
from bench.ledger_open import ledger_row
from bench.team import team, weighed, worker
from cutroom.storage import open_storage

TITLE = "Scale: wall time per story and peak RSS, 10 → 100 → 1000 stories, and 10,000 on a story pool"
GROWTH, RSS_MIB = 1.2, 768
TARGET = f"per-story time growing ≤ {GROWTH:g}× from the smallest to the largest, peak RSS ≤ {RSS_MIB} MiB"
LATENCY_SCALE = 0.005
CAP = 16
#: The pool row's campaign and how many stories a run of the pool makes: (stories, batch); quick: a look.
POOL_SIZES = {False: (10_000, 200), True: (60, 15)}
POOL = "bench-scale"


def run(quick: bool) -> list[Row]:
    sizes = (5, 15) if quick else (10, 100, 1000)
    caps = {name: {"concurrency": CAP, "per_minute": None} for name in ("luma", "runway")}
    figures: dict[int, dict[str, float]] = {}
    rows = []
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
        rows.append(
            Row(
                subject=f"email stories at {' → '.join(map(str, sizes))}, latency × {LATENCY_SCALE}, caps {CAP}",
                figures={f"{n} stories {k}": v for n, f in figures.items() for k, v in f.items()},
                baselines={},
                ratios={f"s/story {sizes[-1]} vs {sizes[0]}": growth},
                target=TARGET,
                met=growth is not None and growth <= GROWTH and peak <= RSS_MIB,
            )
        )
        rows.append(ledger_row(work, quick))
        try:
            rows.append(
                on_pool(work, caps, *POOL_SIZES[quick], {n: figures[n] for n in (sizes[0], sizes[-1])})
            )
        except Exception as exc:  # the in-process sizes stand beside it (the pool row takes hours)
            print(f"  P7 on the pool failed: {exc}", flush=True)
            rows.append(failed_row(exc))
    return rows


def on_pool(work: Path, caps: dict, stories: int, batch: int, in_process: dict[int, dict[str, float]]) -> Row:
    """The campaign made on a pool of two workers, each taking one run of `batch` stories at a time; its time per
    story beside the in-process sizes', and each process at its largest."""
    folder = work / f"team-{stories}"
    folder.mkdir()
    limits = json.dumps(caps)
    campaign_id = f"pool-{stories}"
    log = folder / f"{campaign_id}.log"
    with (
        team(folder, CUTROOM_PROVIDER_LIMITS=limits, CUTROOM_STORY_CONCURRENCY=str(CAP)) as shared,
        worker(shared, POOL, "machine-a", 1) as a,
        worker(shared, POOL, "machine-b", 1) as b,
    ):
        with weighed({"machine-a": a, "machine-b": b, "server": shared.server_pid}) as loads:
            env = {**shared.env, "CUTROOM_STORY_POOL": POOL, "CUTROOM_STORY_BATCH": str(batch)}
            command = cutroom_run(
                write_brief(folder, stories, campaign_id), f"{shared.location}/{campaign_id}"
            )
            done = check(run_child(command, env, log), f"{stories} stories on the pool", log)
        manifest = json.loads(
            open_storage(f"{shared.location}/{campaign_id}").read_bytes(
                f"campaigns/{campaign_id}/manifest.json"
            )
        )
    if (complete := sum(s["status"] == "complete" for s in manifest["stories"])) != stories:
        raise RuntimeError(f"{stories} stories on the pool: {complete} complete; see {log}")
    server = loads.pop("server")
    runs = {pid: mib for load in loads.values() for pid, mib in load.stories_mib.items()}
    per_story = done.timing.wall_s / stories
    largest = max(
        *done.largest_by_role.values(),
        *(max(load.own_mib, load.largest_child_mib) for load in (server, *loads.values())),
    )
    growth = {n: ratio(per_story, f["s/story"]) for n, f in in_process.items()}
    return Row(
        subject=f"{stories} email stories on a story pool of 2 process workers, {batch} stories to a run, one run "
        f"at a time per worker (cutroom server on SQLite, SeaweedFS), latency × {LATENCY_SCALE}, caps {CAP}",
        figures={
            "wall s": done.timing.wall_s,
            "s/story": per_story,
            "campaign peak RSS MiB": done.peak_rss_mib,
            **{
                f"campaign's {part} at its largest MiB": mib
                for part, mib in sorted(done.largest_by_role.items())
            },
            "server peak RSS MiB": server.peak_mib,
            **{f"{name} peak RSS MiB": load.peak_mib for name, load in loads.items()},
            **{f"{name} worker RSS MiB": load.own_mib for name, load in loads.items()},
            **{f"{name} runs": len(load.stories_mib) for name, load in loads.items()},
            "largest run MiB": max(runs.values(), default=0.0),
            "largest process MiB": largest,
        },
        baselines={f"in process, {n} stories": {"s/story": f["s/story"]} for n, f in in_process.items()},
        ratios={f"s/story pool {stories} vs in process {n}": g for n, g in growth.items()},
        target=f"per-story time ≤ {GROWTH:g}× the in-process smallest, every process ≤ {RSS_MIB} MiB",
        met=(smallest := growth[min(growth)]) is not None and smallest <= GROWTH and largest <= RSS_MIB,
    )
