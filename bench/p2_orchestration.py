"""P2: orchestration cost per generated asset, all in, against the same work without Prefect.

`cutroom run` (embedded Prefect server, as a user's first command runs it) and `python -m bench.plain` make
the bench campaign; each is a child process whose CPU counts everything it and its descendants spent until it
exited — client, Prefect's server, renders, ffmpeg. The difference, per asset made, is what orchestration
costs. After Cutroom exits, its Prefect database is read: every flow and task run must be there, final.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

from bench.campaigns import (
    Finished,
    bench_world,
    check,
    cutroom_run,
    environment,
    run_child,
    write_brief,
)
from bench.harness import Row

TITLE = "Orchestration cost per generated asset"
TARGET = "≤ 60 ms CPU per generated asset, no run history lost at exit"
LIMIT_MS = 60.0
LATENCY_SCALE = 0.05
FINAL = ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")


def history(database: Path, flow_name: str = "campaign") -> dict[str, float]:
    """The last campaign's runs in Prefect's database: how many, and how many are not final."""
    with sqlite3.connect(database) as db:
        (root,) = db.execute(
            "SELECT fr.id FROM flow_run fr JOIN flow f ON f.id = fr.flow_id WHERE f.name = ? "
            "ORDER BY fr.created DESC LIMIT 1",
            (flow_name,),
        ).fetchone()
        flows = [root, *(r[0] for r in db.execute(
            "SELECT fr.id FROM flow_run fr JOIN task_run tr ON tr.id = fr.parent_task_run_id "
            "WHERE tr.flow_run_id = ?", (root,),
        ))]  # fmt: skip
        marks = ",".join("?" * len(flows))
        tasks = db.execute(
            f"SELECT state_type FROM task_run WHERE flow_run_id IN ({marks})", flows
        ).fetchall()
        states = db.execute(f"SELECT state_type FROM flow_run WHERE id IN ({marks})", flows).fetchall()
    return {
        "flow runs": len(flows),
        "task runs": len(tasks),
        "not final": sum(1 for (s,) in [*tasks, *states] if s not in FINAL),
    }


def assets(out: Path, campaign_id: str) -> int:
    manifest = json.loads((out / "campaigns" / campaign_id / "manifest.json").read_text())
    return sum(
        len(s["candidates"]) + len(s["clips"]) + (1 if s.get("voice") else 0) for s in manifest["stories"]
    )


def run(quick: bool) -> list[Row]:
    stories = 8 if quick else 50
    with bench_world("p2", LATENCY_SCALE) as (work, url):
        env = environment(work / "prefect")
        # Prefect's database is made first, as before every run of a user's but the first.
        run_child(cutroom_run(write_brief(work, 1, "warm-up"), work / "warm-up"), env, work / "warm-up.log")
        sizes: dict[str, dict[int, Finished]] = {"Cutroom": {}, "plain asyncio": {}}
        made = {}
        for count in (1, stories):
            brief = write_brief(work, count, f"bench-{count}")
            for label, command in (
                ("Cutroom", cutroom_run(brief, work / f"cutroom-{count}")),
                (
                    "plain asyncio",
                    [sys.executable, "-m", "bench.plain", str(brief), str(work / f"plain-{count}")],
                ),
            ):
                log = work / f"{label.split()[0]}-{count}.log"
                sizes[label][count] = check(run_child(command, env, log), f"{label} on {count} stories", log)
            made[count] = assets(work / f"cutroom-{count}", f"bench-{count}")
        runs = history(work / "prefect" / "prefect.db")
    ours, plain = sizes["Cutroom"][stories], sizes["plain asyncio"][stories]
    all_in_ms = 1000 * (ours.timing.cpu_s - plain.timing.cpu_s) / made[stories]

    def slope(label: str) -> float:
        """CPU per extra asset, from the one-story run to the full one: start-up costs cancel out."""
        small, large = sizes[label][1].timing.cpu_s, sizes[label][stories].timing.cpu_s
        return 1000 * (large - small) / (made[stories] - made[1])

    per_asset_ms = slope("Cutroom") - slope("plain asyncio")
    return [
        Row(
            subject=f"{stories} email stories, {made} assets, latency × {LATENCY_SCALE}",
            figures={
                "cpu s": ours.timing.cpu_s,
                "wall s": ours.timing.wall_s,
                "ms/asset over plain, all in": all_in_ms,
                "ms/asset over plain, each more": per_asset_ms,
                "cpu s, 1 story": sizes["Cutroom"][1].timing.cpu_s,
                **runs,
            },
            baselines={
                "plain asyncio": {
                    "cpu s": plain.timing.cpu_s,
                    "wall s": plain.timing.wall_s,
                    "cpu s, 1 story": sizes["plain asyncio"][1].timing.cpu_s,
                }
            },
            ratios={"cpu": ours.timing.cpu_s / plain.timing.cpu_s},
            target=TARGET,
            met=all_in_ms <= LIMIT_MS and runs["not final"] == 0,
        )
    ]
