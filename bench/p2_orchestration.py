"""P2: orchestration cost per generated asset, all in, against the same work without Prefect.

`cutroom run` (embedded Prefect server, as a user runs it) and `python -m bench.plain` make the bench campaign;
each is a child process whose CPU counts everything it and its descendants spent until it exited — client,
Prefect's server, renders, ffmpeg. The difference, per asset made, is what orchestration costs. After Cutroom
exits, its Prefect database is read: every flow and task run must be there, final. The full-size runs are
P1's (bench.campaigns.made); one-story runs beside them give the cost of each asset more. The Prefect floor
(bench/prefect_floor.py) makes the same flow, subflow and task runs with nothing in them: what Prefect
itself costs per asset on this run shape, the bound under Cutroom's figure. The CPU of the embedded Prefect
server process alone is read too (sampled from /proc, bench.campaigns.run_child): it has no counterpart in the
plain script, so on its own it bounds what orchestration can cost per asset here.
"""

from __future__ import annotations

from bench.campaigns import LATENCY_SCALE, campaign_size, made
from bench.harness import Row, ratio

TITLE = "Orchestration cost per generated asset"
TARGET = "≤ 60 ms CPU per generated asset, no run history lost at exit"
LIMIT_MS = 60.0


def run(quick: bool) -> list[Row]:
    stories = campaign_size(quick)
    # A quick run's floor is too small to tell each asset more from start-up noise: it runs at full size only.
    sizes_of = {"Cutroom": (stories, 1), "plain asyncio": (stories, 1), "Prefect floor": (stories,)}
    if not quick:
        sizes_of["Prefect floor"] = (stories, 1)
    sizes = {way: {count: made(way, count) for count in counts} for way, counts in sizes_of.items()}
    counts = {count: sizes["Cutroom"][count].assets or 0 for count in (1, stories)}

    def cpu(way: str, count: int = stories) -> float:
        return sizes[way][count].finished.timing.cpu_s

    def server_cpu(way: str) -> float:
        return sizes[way][stories].finished.prefect_server_cpu_s

    def slope(way: str) -> float:
        """CPU per extra asset, from the one-story run to the full one: start-up costs cancel out."""
        return 1000 * (cpu(way) - cpu(way, 1)) / (counts[stories] - counts[1])

    all_in_ms = 1000 * (cpu("Cutroom") - cpu("plain asyncio")) / counts[stories]
    per_asset_ms = slope("Cutroom") - slope("plain asyncio")
    # The same flow, subflow and task runs doing nothing: what Prefect alone costs per asset.
    floor = {
        "cpu s": cpu("Prefect floor"),
        "Prefect server cpu s": server_cpu("Prefect floor"),
        "ms/asset, all in": 1000 * cpu("Prefect floor") / counts[stories],
    }
    ratios = {
        "cpu vs plain": cpu("Cutroom") / cpu("plain asyncio"),
        "ms/asset over plain vs Prefect floor, all in": ratio(all_in_ms, floor["ms/asset, all in"]),
    }
    if not quick:
        floor.update(
            {"cpu s, 1 story": cpu("Prefect floor", 1), "ms/asset, each more": slope("Prefect floor")}
        )
        ratios["ms/asset over plain vs Prefect floor, each more"] = ratio(
            per_asset_ms, slope("Prefect floor")
        )
    runs = sizes["Cutroom"][stories].history or {}
    return [
        Row(
            subject=f"{stories} email stories, {counts} assets, latency × {LATENCY_SCALE}",
            figures={
                "cpu s": cpu("Cutroom"),
                "wall s": sizes["Cutroom"][stories].finished.timing.wall_s,
                "ms/asset over plain, all in": all_in_ms,
                "ms/asset over plain, each more": per_asset_ms,
                "cpu s, 1 story": cpu("Cutroom", 1),
                "Prefect server cpu s": server_cpu("Cutroom"),
                "Prefect server ms/asset": 1000 * server_cpu("Cutroom") / counts[stories],
                **runs,
            },
            baselines={
                "plain asyncio": {
                    "cpu s": cpu("plain asyncio"),
                    "wall s": sizes["plain asyncio"][stories].finished.timing.wall_s,
                    "cpu s, 1 story": cpu("plain asyncio", 1),
                },
                "Prefect floor": floor,
            },
            ratios=ratios,
            target=TARGET,
            met=all_in_ms <= LIMIT_MS and runs.get("not final") == 0,
        )
    ]
