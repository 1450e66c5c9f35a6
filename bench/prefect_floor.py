"""`python -m bench.prefect_floor BRIEF OUT`: the bench campaign's run shape with no work in it, Prefect's floor.

For the brief's number of stories, a campaign flow makes a plan task, a story subflow per story (16 at once,
as Cutroom starts them) of three generation-like tasks (keyframe → clip, ‖ voice-over), then a reel task and a
publish task. Every result is persisted and cached on its inputs, as Cutroom's are. The tasks only wait: what
this process and its embedded server spend is what Prefect spends on the shape (bench P2). It runs Prefect as
`cutroom run` does: the settings it gives itself and its server (cli.prefect_setup.PREFECT_DEFAULTS, set by bench.campaigns.environment)
and its embedded server (cli.embedded_server).
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import INPUTS
from prefect.settings import PREFECT_RESULTS_LOCAL_STORAGE_PATH, temporary_settings

from cli.embedded_server import serve_ours

#: A vendor job's wait is not the point here; a short one keeps the story runs overlapping as Cutroom's do.
WAIT_S = 0.05


@task(name="step", persist_result=True, cache_policy=INPUTS)
async def step(name: str) -> str:
    await asyncio.sleep(WAIT_S)
    return name


@flow(name="floor-story", flow_run_name="{name}")
async def story(name: str) -> int:
    keyframe, _voice = await asyncio.gather(step(f"{name}-keyframe"), step(f"{name}-voice"))
    await step(f"{keyframe}-clip")
    return 3


@flow(name="floor-campaign")
async def campaign(stories: int, concurrency: int = 16) -> int:
    run = uuid.uuid4().hex[:8]  # a new cache key for every run, as a new campaign's specs are
    await step(f"{run}-plan")
    gate = asyncio.Semaphore(concurrency)

    async def one(n: int) -> int:
        async with gate:
            return await story(f"{run}-s{n:04d}")

    made = sum(await asyncio.gather(*(one(n) for n in range(stories))))
    await step(f"{run}-reel")
    await step(f"{run}-publish")
    return made


if __name__ == "__main__":
    serve_ours()
    stories = json.loads(Path(sys.argv[1]).read_text())["stories"]
    with temporary_settings({PREFECT_RESULTS_LOCAL_STORAGE_PATH: str(Path(sys.argv[2]) / "results")}):
        print(asyncio.run(campaign(stories)), "empty steps")
