"""Plan a campaign from its brief."""

from __future__ import annotations

from prefect import task

from cutroom.assets import InputRef
from cutroom.brief import Brief
from cutroom.plan import Plan, Story
from cutroom.specs import clip_spec, keyframe_spec, voice_spec
from providers import registry
from providers.base import Capability
from providers.registry import Lineup
from tasks.policy import in_thread, key_on, transient_only


@task(
    name="plan",
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=transient_only,
    cache_key_fn=key_on("brief", "planner"),
    persist_result=True,
)
async def plan_campaign(brief: Brief, planner: str) -> Plan:
    return await in_thread(registry.provider(Capability.planner, planner).plan, brief)


def estimate_story(story: Story, brief: Brief, lineup: Lineup) -> float:
    """The most a story can cost: every refinement round of its keyframe, a clip per shot, its voice."""
    start = InputRef(role="keyframe", uri="estimate://keyframe", sha256="0" * 64)
    specs = [keyframe_spec(story, brief, lineup.image.name, lineup.image.model, story.keyframe_prompt)]
    specs *= brief.max_iterations
    video = lineup.video
    specs += [
        clip_spec(shot, brief, video.name, video.model, start, video.durations_s) for shot in story.shots
    ]
    if story.voice_over:
        specs.append(voice_spec(story, lineup.speech.name, lineup.speech.model))
    return sum(registry.provider(Capability(s.kind.value), s.provider).estimate(s) for s in specs)


def estimate_plan(plan: Plan, brief: Brief, lineup: Lineup) -> dict[str, float]:
    return {story.id: estimate_story(story, brief, lineup) for story in plan.stories}
