"""Score an asset and rewrite its prompt from the weakest criteria: the two halves of refinement.

Scoring runs inside the generate task (tasks/generate.py): a task run of its own cost more than the score."""

from __future__ import annotations

from prefect import task

from cutroom.assets import Asset, AssetSpec, Score
from cutroom.brief import Brand
from cutroom.capabilities import Capability
from cutroom.storage import open_storage
from providers import registry
from tasks.policy import key_on, local_slots


def score_asset(asset: Asset, spec: AssetSpec, brand: Brand, judge: str, out: str) -> Score:
    """The judge's score of a stored asset (blocking: local judges render and measure it)."""
    storage = open_storage(out)
    media = storage.local_path(storage.key_of(asset.uri))
    with local_slots():
        return registry.provider(Capability.judge, judge).score(media, spec, brand)


@task(
    name="refine-prompt",
    cache_key_fn=key_on("prompt", "score", "target", "refiner"),
    persist_result=True,
)
async def refine_prompt(prompt: str, score: Score, target: float, refiner: str = "local") -> str:
    return registry.provider(Capability.refiner, refiner).refine(prompt, score, target)
