"""Score an asset and rewrite its prompt from the weakest criteria: the two halves of refinement."""

from __future__ import annotations

import asyncio

from prefect import task

from cutroom.assets import Asset, AssetSpec, Score
from cutroom.brief import Brand
from cutroom.storage import open_storage
from providers import registry
from providers.base import Capability
from providers.local.refiner import LocalRefiner
from tasks.policy import key_on, local_slots, transient_only


def _score(asset: Asset, spec: AssetSpec, brand: Brand, judge: str, out: str) -> Score:
    storage = open_storage(out)
    media = storage.local_path(storage.key_of(asset.uri))
    with local_slots():
        return registry.provider(Capability.judge, judge).score(media, spec, brand)


@task(
    name="score",
    task_run_name="score-{asset.story_id}-{asset.kind}-i{asset.iteration}",
    retries=1,
    retry_condition_fn=transient_only,
    cache_key_fn=key_on("asset", "spec", "brand", "judge"),
    persist_result=True,
    tags=["judge"],
)
async def score(asset: Asset, spec: AssetSpec, brand: Brand, judge: str, out: str) -> Score:
    return await asyncio.to_thread(_score, asset, spec, brand, judge, out)


@task(
    name="refine-prompt",
    cache_key_fn=key_on("prompt", "score", "target"),
    persist_result=True,
    tags=["judge"],
)
async def refine_prompt(prompt: str, score: Score, target: float) -> str:
    return LocalRefiner().refine(prompt, score, target)
