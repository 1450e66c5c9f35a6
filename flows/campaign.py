"""A whole campaign: brief → plan → stories at once → reels → manifest and report."""

from __future__ import annotations

import asyncio

from prefect import flow
from prefect.artifacts import acreate_progress_artifact, aupdate_progress_artifact
from prefect.runtime import flow_run

from cutroom.brief import Brief
from cutroom.exports import reel_plans
from cutroom.manifest import CampaignStatus, Export, LedgerSummary, Manifest, StoryResult, StoryStatus
from cutroom.plan import Plan
from cutroom.settings import settings
from flows.story import story_flow
from providers import registry
from providers.registry import Lineup
from tasks.assemble import assemble
from tasks.plan import estimate_plan, plan_campaign
from tasks.policy import stored
from tasks.publish import publish


@flow(name="campaign", flow_run_name="{brief.campaign_id}")
async def campaign(brief: Brief, out: str = "cutroom-out") -> Manifest:
    """Plan the brief, make every story at once, cut a reel per channel format, publish the manifest and report."""
    lineup = registry.lineup(brief.providers)
    plan = await plan_campaign(brief, lineup.planner.name)
    results = await make_stories(plan, brief, lineup, out)
    exports = await cut_reels(brief, plan, results, out)
    manifest = record(brief, plan, lineup, results, exports)
    await publish(manifest, out)
    return manifest


async def make_stories(plan: Plan, brief: Brief, lineup: Lineup, out: str) -> list[StoryResult]:
    """Every story at once (up to CUTROOM_STORY_CONCURRENCY); a progress artifact follows them."""
    gate = asyncio.Semaphore(settings().story_concurrency)
    progress = await acreate_progress_artifact(
        0.0, key=f"{brief.campaign_id}-progress", description="Stories done"
    )
    done = 0

    async def one(story) -> StoryResult:
        nonlocal done
        async with gate:
            state = await story_flow(story, brief, lineup, out, return_state=True)
        result = await state.result(raise_on_failure=False)
        if not isinstance(result, StoryResult):  # the story crashed outside its steps
            result = StoryResult(
                story_id=story.id, status=StoryStatus.failed, error=f"story crashed: {result}"
            )
        done += 1
        await aupdate_progress_artifact(progress, 100.0 * done / len(plan.stories))
        return result

    return list(await asyncio.gather(*(one(s) for s in plan.stories)))


async def cut_reels(brief: Brief, plan: Plan, results: list[StoryResult], out: str) -> list[Export]:
    config = settings()
    return list(
        await asyncio.gather(
            *(
                stored(
                    assemble,
                    out,
                    reel,
                    brief.brand,
                    out,
                    brief.campaign_id,
                    config.crossfade_s,
                    config.end_card_s,
                )
                for reel in reel_plans(brief, plan, results)
            )
        )
    )


def record(
    brief: Brief, plan: Plan, lineup: Lineup, results: list[StoryResult], exports: list[Export]
) -> Manifest:
    run_id = str(flow_run.root_flow_run_id or flow_run.id or "")
    complete = sum(r.status is StoryStatus.complete for r in results)
    status = (
        CampaignStatus.complete
        if complete == len(results) and exports
        else CampaignStatus.partial
        if complete
        else CampaignStatus.failed
    )
    assets = [a for r in results for a in r.assets]
    return Manifest(
        campaign=brief.campaign,
        campaign_id=brief.campaign_id,
        status=status,
        run_id=run_id,
        brief=brief,
        plan=plan,
        stories=results,
        exports=exports,
        ledger=LedgerSummary(
            budget_usd=brief.budget_usd,
            estimated_usd=round(sum(estimate_plan(plan, brief, lineup).values()), 4),
            spent_usd=round(sum(a.cost_usd for a in assets), 4),
        ),
        reused_assets=sum(1 for a in assets if a.run_id != run_id),
    )
