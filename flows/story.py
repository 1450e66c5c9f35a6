"""One story: a keyframe refined to the quality target, a clip per shot, and a voice-over."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from contextvars import ContextVar
from typing import Literal, TypeVar

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run
from prefect.states import Failed

from cutroom import progress
from cutroom.assets import Asset, AssetSpec, InputRef
from cutroom.brief import Brief
from cutroom.capabilities import Capability
from cutroom.ledger import OverBudget
from cutroom.lineup import Lineup, Pick
from cutroom.manifest import StoryResult, StoryStatus
from cutroom.plan import Shot, Story, StoryType
from cutroom.review import NeedsReview
from cutroom.specs import clip_spec, keyframe_spec, presenter_spec, voice_spec
from tasks.fallback import first_that_serves
from tasks.frames import last_frame_of
from tasks.generate import generate
from tasks.judge import refine_prompt
from tasks.policy import stored
from tasks.refusals import made_despite_refusal
from tasks.results import CampaignResults  # noqa: F401  (a story run on a worker loads this block type: S3 results)
from tasks.template import render_story_template

T = TypeVar("T")

#: How far a story run goes: its keyframe only (for a review before video), or to its end. A rerun to the end
#: reuses the keyframe already made, as every step is cached.
Until = Literal["keyframe", "end"]

#: The campaign run this story belongs to, recorded on every asset it makes.
campaign_run: ContextVar[str | None] = ContextVar("campaign_run", default=None)


class StepFailed(Exception):
    """A story step that failed, named so the report can say where."""

    def __init__(self, message: str, over_budget: bool = False, review: bool = False):
        self.over_budget, self.review = over_budget, review
        super().__init__(message)


@flow(name="story", flow_run_name="{story.id}")
async def story_flow(
    story: Story, brief: Brief, lineup: Lineup, out: str, run_id: str | None = None, until: Until = "end"
) -> StoryResult | State:
    """keyframe (generate → score → refine until the target) → a clip per shot, ‖ the voice-over; then, for an
    avatar story, its presenter, and where the brand has a template, the story rendered into it.

    The clips wait for the keyframe only: the voice-over is made beside the whole picture, off its critical path.
    An avatar story's presenter speaks the voice-over with the keyframe's face, so it waits for both.
    With `until="keyframe"` the story stops at its chosen keyframe.
    """
    result = StoryResult(story_id=story.id, status=StoryStatus.complete)
    campaign_run.set(run_id or flow_run.get_id())
    presented = story.type is StoryType.avatar and bool(story.voice_over)

    async def picture() -> None:
        result.keyframe = await _step(
            "keyframe", refine_keyframe(story, brief, lineup, out, result.candidates)
        )
        if until == "end" and story.moving and not presented:
            result.clips = await _step("clips", shoot(story, brief, lineup, out, result.keyframe))

    async def sound() -> None:
        result.voice = await _step("voice-over", speak(story, brief, lineup, out))

    async def after() -> None:
        if presented:
            result.clips = [await _step("presenter", present(story, brief, lineup, out, result))]
        if brief.brand.template:
            result.render = await _step("template", render_template(story, brief, lineup, out, result))

    # Both run to their end either way, so a failed side never leaves the other running after the story.
    sides = (picture(), sound()) if until == "end" else (picture(),)
    failures = [f for f in await asyncio.gather(*sides, return_exceptions=True) if f is not None]
    if not failures and until == "end":
        failures = [f for f in await asyncio.gather(after(), return_exceptions=True) if f is not None]
    if failures:
        exc = failures[0]
        if not isinstance(exc, StepFailed):
            raise exc
        get_run_logger().error("story %s: %s", story.id, exc)
        result.status = (
            StoryStatus.over_budget
            if exc.over_budget
            else StoryStatus.needs_review
            if exc.review
            else StoryStatus.failed
        )
        result.error = str(exc)
    progress.emit(story.id, result.status.value, result.error or "", done=True, failed=bool(result.error))
    # A failed story shows as Failed in Prefect and still hands back what it made.
    return Failed(message=result.error, data=result) if result.error else result


#: Pauses before starting a story's run again when Prefect could not (its embedded SQLite stays locked for
#: seconds under many runs at once: bench P7 saw a 503 outlast the client's own retries at 100 stories).
STORY_START_RETRIES_S = (5.0, 15.0, 45.0)


async def make_story(
    story: Story, brief: Brief, lineup: Lineup, out: str, run_id: str, until: Until = "end"
) -> StoryResult:
    """The story made in this process, as a run of its own; an orchestration failure fails this story only.

    Starting again is safe: every step is cached and every paid job is in the ledger, so a story that had
    begun picks up where it was.
    """
    for pause in (*STORY_START_RETRIES_S, None):
        try:
            state = await story_flow(story, brief, lineup, out, run_id, until, return_state=True)
            break
        except Exception as exc:  # raised before the story had a state: Prefect's API refused its run
            if pause is None:
                return StoryResult(
                    story_id=story.id, status=StoryStatus.failed, error=f"story could not start: {exc}"
                )
            await asyncio.sleep(pause)
    result = await state.result(raise_on_failure=False)
    if not isinstance(result, StoryResult):  # the story crashed outside its steps
        result = StoryResult(story_id=story.id, status=StoryStatus.failed, error=f"story crashed: {result}")
    return result


async def refine_keyframe(
    story: Story, brief: Brief, lineup: Lineup, out: str, candidates: list[Asset]
) -> Asset:
    """Keep refining the prompt from the judge's weakest criteria; the best candidate wins."""
    prompt, parent = story.keyframe_prompt, None
    criteria = tuple(story.acceptance_criteria)
    for iteration in range(1, brief.max_iterations + 1):
        image = lineup[Capability.image]
        spec = keyframe_spec(story, brief, image.name, image.model, prompt, "style_reference" in image.inputs)
        try:
            asset = await make(spec, brief, story, lineup, out, iteration, parent, criteria=criteria)
        except OverBudget:
            if not candidates:
                raise
            break  # the budget ends refinement; the best keyframe so far carries on
        candidates.append(asset)
        if asset.score.total >= brief.quality_target or iteration == brief.max_iterations:
            break  # on target, or no round left to try a rewrite in
        refined = await refine_prompt(
            prompt,
            asset.score,
            brief.quality_target,
            lineup[Capability.refiner].entry,
            tuple(brief.brand.avoid),
            out,
            brief.campaign_id,
            brief.budget_usd,
            story.id,
        )
        if refined == prompt:
            break  # the refiner has nothing left to try
        prompt, parent = refined, asset.sha256
    return max(candidates, key=lambda a: a.score.total)


async def shoot(story: Story, brief: Brief, lineup: Lineup, out: str, keyframe: Asset) -> list[Asset]:
    """Shots that continue the previous one form a chain; chains run at once, shots in a chain in turn."""
    chains: list[list[Shot]] = []
    for shot in story.shots:
        if shot.continues_previous and chains:
            chains[-1].append(shot)
        else:
            chains.append([shot])
    start = InputRef(role="keyframe", uri=keyframe.uri, sha256=keyframe.sha256, url=keyframe.source_url)
    filmed = await asyncio.gather(
        *(_shoot_chain(chain, story, brief, lineup, out, start) for chain in chains)
    )
    return [clip for chain in filmed for clip in chain]


async def _shoot_chain(
    chain: list[Shot], story: Story, brief: Brief, lineup: Lineup, out: str, start: InputRef
) -> list[Asset]:
    clips: list[Asset] = []
    for shot in chain:
        if clips:
            previous = clips[-1]
            start = await stored(last_frame_of, out, previous, out, brief.campaign_id)
            if previous.job_id:  # a vendor that can chain generations continues from the job itself
                joined = {
                    "continues": f"{previous.provider}:{previous.job_id}",
                    "continues_model": previous.model,
                }
                start = start.model_copy(update=joined)
        video = lineup.video_for(shot)
        spec = clip_spec(shot, brief, video.name, video.model, start, video.durations_s)
        parent = clips[-1].sha256 if clips else None
        clips.append(await make(spec, brief, story, lineup, out, parent=parent, pick=video))
    return clips


async def speak(story: Story, brief: Brief, lineup: Lineup, out: str) -> Asset | None:
    if not story.voice_over:
        return None
    speech = lineup[Capability.speech]
    return await make(voice_spec(story, speech.name, speech.model), brief, story, lineup, out)


async def present(story: Story, brief: Brief, lineup: Lineup, out: str, made: StoryResult) -> Asset:
    """The presenter speaking the voice-over, with the keyframe as its face."""
    avatar, voice, face = lineup[Capability.avatar], made.voice, made.keyframe
    spec = presenter_spec(
        story, brief, avatar.name, avatar.model,
        portrait=InputRef(role="portrait", uri=face.uri, sha256=face.sha256, url=face.source_url),
        voice=InputRef(role="audio", uri=voice.uri, sha256=voice.sha256),
        duration_s=voice.duration_s,
    )  # fmt: skip
    return await make(spec, brief, story, lineup, out, parent=face.sha256)


async def render_template(story: Story, brief: Brief, lineup: Lineup, out: str, made: StoryResult) -> Asset:
    return await render_story_template(
        story, made, brief, lineup[Capability.template], out, brief.brand.template, campaign_run.get()
    )


async def make(
    spec: AssetSpec,
    brief: Brief,
    story: Story,
    lineup: Lineup,
    out: str,
    iteration: int = 1,
    parent: str | None = None,
    pick: Pick | None = None,
    criteria: tuple[str, ...] = (),
) -> Asset:
    """Generate and score one asset. A cached result whose file has gone is made again, not trusted. A provider
    that cannot serve the run at all (no key, a refused key, no credits) hands over to the brief's next one
    (`pick`'s fallbacks: by default the lineup's for the asset's kind)."""
    where = {
        "out": out,
        "campaign_id": brief.campaign_id,
        "story_id": story.id,
        "iteration": iteration,
        "parent": parent,
    }

    async def on(spec: AssetSpec) -> Asset:
        return await stored(
            generate,
            out,
            spec,
            **where,
            budget_usd=brief.budget_usd,
            run_id=campaign_run.get(),
            brand=brief.brand,
            judge=lineup[Capability.judge].entry,
            criteria=criteria,
        )

    async def served(spec: AssetSpec) -> Asset:
        return await first_that_serves(
            pick or lineup[Capability(spec.kind.value)], spec, on, campaign_run.get() or ""
        )

    asset = await made_despite_refusal(spec, served, lineup[Capability.refiner].entry, brief, story.id, out)
    progress.emit(story.id, spec.kind.value, f"iteration {iteration}, score {asset.score.total:.0f}")
    return asset


async def _step(name: str, work: Awaitable[T]) -> T:
    try:
        return await work
    except OverBudget as exc:
        raise StepFailed(f"{name} left out: {exc}", over_budget=True) from exc
    except NeedsReview as exc:
        raise StepFailed(f"{name} left for review: {exc}", review=True) from exc
    except Exception as exc:
        raise StepFailed(f"{name} failed: {exc}") from exc
