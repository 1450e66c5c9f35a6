"""Plan a campaign from its brief."""

from __future__ import annotations

from prefect import task

from cutroom.assets import AssetKind, AssetSpec, InputRef
from cutroom.brief import Brief
from cutroom.capabilities import Capability
from cutroom.lineup import Lineup
from cutroom.metering import charged_to_campaign
from cutroom.plan import Plan, Shot, Story, StoryType
from cutroom.specs import clip_spec, keyframe_spec, presenter_spec, voice_spec
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
async def plan_campaign(brief: Brief, planner: str, out: str) -> Plan:
    """The plan from the planner named 'name:model'; a language model's calls are charged to the campaign."""
    name, model = registry.named(planner)

    def plan() -> Plan:
        with charged_to_campaign(out, brief.campaign_id, brief.budget_usd):
            return registry.provider(Capability.planner, name).plan(brief, model)

    return await in_thread(plan)


def lineup_for(brief: Brief) -> Lineup:
    """The provider and model each capability uses for this brief, and why others were passed over."""
    hero = brief.preferences(hero=True)[Capability.video.value] if brief.hero_engines else None
    lineup = registry.lineup(brief.preferences(), hero)
    image = lineup[Capability.image]
    if brief.brand.style_reference and "style_reference" not in image.inputs:
        note = f"image: {image.name}/{image.model} takes no style reference: keyframes will not follow brand.style_reference"
        lineup = lineup.model_copy(update={"notes": (*lineup.notes, note)})
    return lineup


def shot_costs(story: Story, brief: Brief, lineup: Lineup) -> list[tuple[Shot, AssetSpec, float]]:
    """Each shot's clip as it will be asked for (the engine and model its kind of shot is made on) and what it
    costs there."""
    start = InputRef(role="keyframe", uri="estimate://keyframe", sha256="0" * 64)
    costs = []
    for shot in story.shots:
        video = lineup.video_for(shot)
        spec = clip_spec(shot, brief, video.name, video.model, start, video.durations_s)
        costs.append((shot, spec, _priced(spec)))
    return costs


def estimate_story(story: Story, brief: Brief, lineup: Lineup) -> float:
    """The most a story can cost: every refinement round of its keyframe, a clip per shot (an avatar story: its
    presenter), its voice, its brand template render."""
    image, speech = lineup[Capability.image], lineup[Capability.speech]
    follows = "style_reference" in image.inputs
    specs = [keyframe_spec(story, brief, image.name, image.model, story.keyframe_prompt, follows)]
    specs *= brief.max_iterations
    presented = story.type is StoryType.avatar and bool(story.voice_over)
    if story.voice_over:
        specs.append(voice_spec(story, speech.name, speech.model))
    if presented:
        avatar = lineup[Capability.avatar]
        placeholder = {"uri": "estimate://input", "sha256": "0" * 64}
        portrait, voice = InputRef(role="portrait", **placeholder), InputRef(role="audio", **placeholder)
        specs.append(
            presenter_spec(story, brief, avatar.name, avatar.model, portrait, voice, story.duration_s)
        )
    # Nothing is paid for until every planned request is one its model can make.
    made = sum(_priced(spec) for spec in specs)
    if not presented:
        made += sum(cost for _, _, cost in shot_costs(story, brief, lineup))
    return made + _template_render(story, brief, lineup) + _judging(story, brief, lineup)


def _template_render(story: Story, brief: Brief, lineup: Lineup) -> float:
    """The brand template render, as long as the story (what its voice, or else its clip, will last)."""
    if not brief.brand.template:
        return 0.0
    pick = lineup[Capability.template]
    spec = AssetSpec(
        kind=AssetKind.template,
        provider=pick.name,
        model=pick.model,
        prompt=story.copy_.headline,
        duration_s=story.duration_s or None,
        options={"template_id": brief.brand.template},
    )
    return registry.provider(Capability.template, pick.name).estimate(spec)


def _judging(story: Story, brief: Brief, lineup: Lineup) -> float:
    """A language-model judge's and refiner's calls: a score per keyframe round and clip, a rewrite between
    rounds (free on the local ones)."""
    judge, refiner = lineup[Capability.judge], lineup[Capability.refiner]
    scores = brief.max_iterations + len(story.shots)
    judging = registry.provider(Capability.judge, judge.name).call_usd(judge.model) * scores
    rewriting = registry.provider(Capability.refiner, refiner.name).call_usd(refiner.model) * (
        brief.max_iterations - 1
    )
    return judging + rewriting


def _priced(spec: AssetSpec) -> float:
    registry.check(spec)
    return registry.provider(Capability(spec.kind.value), spec.provider).estimate(spec)


def estimate_plan(plan: Plan, brief: Brief, lineup: Lineup) -> dict[str, float]:
    return {story.id: estimate_story(story, brief, lineup) for story in plan.stories}
