"""A whole campaign: brief → plan → stories at once → reels → manifest and report."""

from __future__ import annotations

import asyncio
import re
from functools import partial
from typing import NamedTuple

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact, acreate_progress_artifact, aupdate_progress_artifact
from prefect.runtime import flow_run

from cutroom.boundary import quote
from cutroom.brief import CAMPAIGN_ID, Brief, BriefError, Review
from cutroom.capabilities import Capability
from cutroom.exports import ReelPlan, reel_plans
from cutroom.ledger import ledger_for, summarise
from cutroom.lineup import Lineup
from cutroom.manifest import CampaignStatus, Export, FailedReel, Manifest, StoryResult, StoryStatus
from cutroom.media import MediaError
from cutroom.notify import campaign_ended, campaign_failed, notify
from cutroom.plan import Plan, Story
from cutroom.settings import settings
from cutroom.storage import StorageUnavailable, open_storage
from flows.fanout import prepare_story_pool, run_on_pool
from flows.review import reviewed
from flows.story import Until, make_story
from providers.errors import ProviderError
from tasks.assemble import assemble
from tasks.checks import check_before_paying
from tasks.limits import ensure_vendor_limits
from tasks.plan import estimate_plan, lineup_for, plan_campaign
from tasks.policy import stored
from tasks.publish import publish


def campaign_run_name() -> str:
    """A campaign's run is named by the id its folder, report and notices carry — dated when its schedule dates
    it — so the Prefect UI and `cutroom review` find each week's run by that id."""
    brief, pattern = flow_run.parameters["brief"], flow_run.parameters.get("dated")
    try:
        return dated_brief(brief, pattern).campaign_id
    except BriefError:  # the run itself says so, under the brief's own id
        return brief.campaign_id


def dated_brief(brief: Brief, pattern: str | None) -> Brief:
    """The brief under its campaign id followed by the run's scheduled start (UTC) in `pattern`, so a schedule that
    re-makes a campaign gives each run its own folder and ledger. The scheduled start, not the clock: a run that
    is retried or resumed later keeps its id, and with it the work it had done."""
    if not pattern:
        return brief
    campaign_id = brief.campaign_id + flow_run.scheduled_start_time.strftime(pattern)
    if not re.fullmatch(CAMPAIGN_ID, campaign_id):
        raise BriefError(
            "the brief",
            [
                f"'dated' makes the campaign id {quote(campaign_id)}, which is not folder-safe: use lowercase "
                "letters, digits and dashes, at most 63 in all (e.g. -%G-w%V)"
            ],
        )
    return brief.model_copy(update={"id": campaign_id})


@flow(name="campaign", flow_run_name=campaign_run_name)
async def campaign(
    brief: Brief, out: str = "cutroom-out", resume: bool = False, dated: str | None = None
) -> Manifest:
    """Plan the brief, make every story at once, cut a reel per channel format, publish the manifest and report.

    `resume` continues the campaign that holds the brief's folder even when this brief names it differently.
    `dated` (a strftime pattern such as -%G-w%V) appends the run's scheduled date to the campaign id."""
    brief = dated_brief(brief, dated)
    try:
        manifest = await make_campaign(brief, out, resume)
    except Exception as exc:  # whoever waits on the campaign hears it stopped, then Prefect marks the run
        await notify(campaign_failed(brief.campaign_id, _root_run_id(), _why(exc)))
        raise
    await notify(campaign_ended(manifest, out))
    return manifest


async def make_campaign(brief: Brief, out: str, resume: bool) -> Manifest:
    """The campaign under its settled id: checks, plan, stories (after review, when the brief asks for it),
    reels, and the published manifest and report."""
    check_before_paying(brief, out, resume)
    lineup = lineup_for(brief)
    await ensure_vendor_limits(lineup.providers())
    plan = await plan_campaign(brief, lineup[Capability.planner].entry, out)
    if plan.prd is not None:
        await acreate_markdown_artifact(
            plan.prd.markdown(brief.campaign), key=f"{brief.campaign_id}-prd", description="Campaign PRD"
        )
    estimates = estimate_plan(plan, brief, lineup)
    run_id = _root_run_id()
    if pool := settings().story_pool:  # once, before any review round: every round's stories run on it
        await prepare_story_pool(pool, out)
    make = partial(make_stories, plan, brief, lineup, out, estimates, run_id)
    verdicts = await reviewed(plan, brief, make, out) if brief.review is not Review.none else {}
    results = await make(verdicts=verdicts)
    reels = await cut_reels(brief, plan, results, out)
    manifest = record(brief, plan, estimates, results, reels, out, run_id, lineup)
    await publish(manifest, out)
    return manifest


#: Errors whose message was written for the person running the campaign (it names what is wrong and quotes
#: little); any other error is named by its kind alone, as its message may hold a URL with a token.
_SAYS_WHY = (ValueError, ProviderError, MediaError, StorageUnavailable)


def _why(error: Exception) -> str:
    """What stopped a campaign, in one short line fit for a chat room."""
    said = " ".join(str(error).split())[:300] if isinstance(error, _SAYS_WHY) else ""
    return f"{type(error).__name__}: {said}" if said else type(error).__name__


def _root_run_id() -> str:
    return str(flow_run.root_flow_run_id or flow_run.id or "")


def admit(plan: Plan, brief: Brief, estimates: dict[str, float]) -> dict[str, str]:
    """Stories whose estimate fits what is left of the budget, in plan order; the others and why not.

    Admitting whole stories keeps the money for stories that can finish, instead of every story starting
    and none affording its last clip. The ledger still checks every submit against the budget.
    """
    planned, refused = 0.0, {}
    for story in plan.stories:
        need = estimates[story.id]
        if planned + need > brief.budget_usd + 1e-9:
            refused[story.id] = (
                f"left out: its estimate ${need:.2f} would take the campaign past its "
                f"${brief.budget_usd:.2f} budget (${planned:.2f} planned for the stories before it)"
            )
        else:
            planned += need
    return refused


async def make_stories(
    plan: Plan,
    brief: Brief,
    lineup: Lineup,
    out: str,
    estimates: dict[str, float],
    run_id: str,
    until: Until = "end",
    verdicts: dict[str, Story | StoryResult] | None = None,
) -> list[StoryResult]:
    """Every story the budget admits at once (up to CUTROOM_STORY_CONCURRENCY runs); a progress artifact follows.

    `verdicts` holds what a review made of a story: the story to make instead (its keyframe directed by the
    reviewers' notes), or the result it keeps without being made again (approved, dropped)."""
    refused = admit(plan, brief, estimates)
    results: dict[str, StoryResult] = {}
    to_make: list[Story] = []
    for story in plan.stories:
        verdict = (verdicts or {}).get(story.id, story)
        if story.id in refused:
            results[story.id] = StoryResult(
                story_id=story.id, status=StoryStatus.over_budget, error=refused[story.id]
            )
        elif isinstance(verdict, StoryResult):
            results[story.id] = verdict
        else:
            to_make.append(verdict)
    gate = asyncio.Semaphore(settings().story_concurrency)
    progress = await acreate_progress_artifact(
        0.0, key=f"{brief.campaign_id}-progress", description="Stories done"
    )
    done = len(results)

    async def make(stories: list[Story]) -> None:
        nonlocal done
        async with gate:
            made = await _run_stories(stories, brief, lineup, out, run_id, until)
        results.update((result.story_id, result) for result in made)
        done += len(stories)
        await aupdate_progress_artifact(progress, 100.0 * done / len(plan.stories))

    # On a pool, a run makes a batch of stories (CUTROOM_STORY_BATCH); in this process, each story is a run.
    batch = settings().story_batch if settings().story_pool else 1
    await asyncio.gather(*(make(to_make[i : i + batch]) for i in range(0, len(to_make), batch)))
    return [results[story.id] for story in plan.stories]


async def _run_stories(
    stories: list[Story], brief: Brief, lineup: Lineup, out: str, run_id: str, until: Until = "end"
) -> list[StoryResult]:
    """Their results: on CUTROOM_STORY_POOL a worker of that pool makes them, in one run (flows/fanout.py);
    otherwise this process, each its own story run."""
    if settings().story_pool:
        return await run_on_pool(stories, brief, lineup, out, run_id, until)
    return [await make_story(story, brief, lineup, out, run_id, until) for story in stories]


class Reels(NamedTuple):
    made: list[Export]
    failed: list[FailedReel]


#: How much of a reel's error the manifest keeps: enough to say why, never a whole ffmpeg log.
REEL_ERROR_CHARS = 600


async def cut_reels(brief: Brief, plan: Plan, results: list[StoryResult], out: str) -> Reels:
    """A reel per channel format; one that cannot be cut is recorded with why, and the others go on.

    Assembly comes last, after every story is paid for: a failure there must not lose the manifest and report
    of what was made. A rerun reuses every asset and tries the failed reel again.
    """
    config = settings()

    async def cut(reel: ReelPlan) -> Export | FailedReel:
        args = (reel, brief.brand, out, brief.campaign_id, config.crossfade_s, config.end_card_s)
        try:
            return await stored(assemble, out, *args)
        except Exception as exc:
            error = (str(exc).strip() or type(exc).__name__)[:REEL_ERROR_CHARS]
            name = f"{reel.channel.value} {reel.format.aspect.value}"
            get_run_logger().error("the %s reel was left out: %s", name, error)
            return FailedReel(
                channel=reel.channel,
                aspect=reel.format.aspect,
                stories=[r.story_id for r in reel.stories],
                error=error,
            )

    cut_all = await asyncio.gather(
        *(cut(reel) for reel in reel_plans(brief, plan, results, config.crossfade_s, config.end_card_s))
    )
    return Reels(
        made=[r for r in cut_all if isinstance(r, Export)],
        failed=[r for r in cut_all if isinstance(r, FailedReel)],
    )


def record(
    brief: Brief,
    plan: Plan,
    estimates: dict[str, float],
    results: list[StoryResult],
    reels: Reels,
    out: str,
    run_id: str,
    lineup: Lineup | None = None,
) -> Manifest:
    complete = sum(r.status is StoryStatus.complete for r in results)
    kept = sum(r.status is not StoryStatus.dropped for r in results)  # a reviewer's drop is no shortfall
    status = (
        CampaignStatus.complete
        if complete == kept and reels.made and not reels.failed
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
        prd=plan.prd,
        plan=plan.model_copy(update={"prd": None}),
        stories=results,
        exports=reels.made,
        failed_reels=reels.failed,
        ledger=summarise(
            ledger_for(open_storage(out), brief.campaign_id),
            brief.budget_usd,
            sum(estimates.values()),
            [r.story_id for r in results if r.status is StoryStatus.over_budget],
        ),
        reused_assets=sum(1 for a in assets if a.run_id != run_id),
        lineup=lineup,
    )
