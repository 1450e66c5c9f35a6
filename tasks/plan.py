"""Plan a campaign from its brief."""

from __future__ import annotations

from prefect import task

from cutroom.assets import InputRef
from cutroom.brief import Brief
from cutroom.capabilities import Capability
from cutroom.lineup import Lineup
from cutroom.plan import Plan, Story
from cutroom.specs import clip_spec, keyframe_spec, voice_spec
from providers import registry
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


def lineup_for(brief: Brief) -> Lineup:
    """The provider and model each capability uses for this brief, and why others were passed over."""
    lineup = registry.lineup(brief.providers)
    image = lineup[Capability.image]
    if brief.brand.style_reference and "style_reference" not in image.inputs:
        note = f"image: {image.name}/{image.model} takes no style reference: keyframes will not follow brand.style_reference"
        lineup = lineup.model_copy(update={"notes": (*lineup.notes, note)})
    return lineup


def estimate_story(story: Story, brief: Brief, lineup: Lineup) -> float:
    """The most a story can cost: every refinement round of its keyframe, a clip per shot, its voice."""
    start = InputRef(role="keyframe", uri="estimate://keyframe", sha256="0" * 64)
    image, video, speech = (lineup[c] for c in (Capability.image, Capability.video, Capability.speech))
    follows = "style_reference" in image.inputs
    specs = [keyframe_spec(story, brief, image.name, image.model, story.keyframe_prompt, follows)]
    specs *= brief.max_iterations
    specs += [
        clip_spec(shot, brief, video.name, video.model, start, video.durations_s) for shot in story.shots
    ]
    if story.voice_over:
        specs.append(voice_spec(story, speech.name, speech.model))
    for spec in specs:
        registry.check(spec)  # nothing is paid for until every planned request is one its model can make
    return sum(registry.provider(Capability(s.kind.value), s.provider).estimate(s) for s in specs)


def estimate_plan(plan: Plan, brief: Brief, lineup: Lineup) -> dict[str, float]:
    return {story.id: estimate_story(story, brief, lineup) for story in plan.stories}
