"""Score an asset and rewrite its prompt from the weakest criteria: the two halves of refinement.

Scoring runs inside the generate task (tasks/generate.py): a task run of its own cost more than the score.
A judge or refiner is handed over as 'name:model'; a language model's calls are charged to the campaign's ledger.
"""

from __future__ import annotations

from prefect import task

from cutroom.assets import Asset, AssetSpec, Score
from cutroom.brief import Brand
from cutroom.capabilities import Capability
from cutroom.ledger import ledger_for
from cutroom.metering import charged_to, charged_to_campaign
from cutroom.storage import open_storage
from providers import registry
from tasks.policy import in_thread, key_on, local_slots, transient_only


def score_asset(
    asset: Asset,
    spec: AssetSpec,
    brand: Brand,
    judge: str,
    out: str,
    campaign_id: str,
    criteria: tuple[str, ...] = (),
    budget_usd: float | None = None,
) -> Score:
    """The judge's score of a stored asset (blocking: local judges render and measure it)."""
    storage = open_storage(out)
    media = storage.local_path(storage.key_of(asset.uri))
    name, model = registry.named(judge)
    # The storage already open for the media: no second client per scored asset.
    with local_slots(), charged_to(ledger_for(storage, campaign_id), budget_usd, asset.story_id):
        return registry.provider(Capability.judge, name).score(media, spec, brand, criteria, model)


@task(
    name="refine-prompt",
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=transient_only,
    cache_key_fn=key_on("prompt", "score", "target", "refiner", "avoid"),
    persist_result=True,
)
async def refine_prompt(
    prompt: str,
    score: Score,
    target: float,
    refiner: str,
    avoid: tuple[str, ...] = (),
    out: str = "",
    campaign_id: str = "",
    budget_usd: float | None = None,
    story_id: str | None = None,
) -> str:
    name, model = registry.named(refiner)

    def rewrite() -> str:
        with charged_to_campaign(out, campaign_id, budget_usd, story_id):
            return registry.provider(Capability.refiner, name).refine(prompt, score, target, avoid, model)

    return await in_thread(rewrite)
