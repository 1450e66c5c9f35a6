"""The PRD planner: a language model writes the campaign PRD from the brief, then the typed story plan from the
PRD, a few stories per answer.

Asking in parts keeps every answer short (a 200-story campaign would not fit one answer's max tokens) and lets
each part be checked on its own: exactly the stories asked for (the count is in the schema), and none of the
brand's avoided words anywhere — an answer that fails is repaired (providers/llm.py), never shipped. Where a model
drifts from a channel's rules (shots on a still design, a reel too long, a voice-over too long to read in its
shots), the story is fitted here rather than paid for again.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, create_model

from cutroom.boundary import text
from cutroom.brief import Brief
from cutroom.channels import Channel, primary_format
from cutroom.plan import CameraMotion, Copy, Plan, Shot, Story, StoryType
from cutroom.prd import Prd
from providers.llm import LanguageModel, Question

#: Stories asked for in one answer.
STORIES_PER_ANSWER = 6
#: How fast a voice-over is read, in words a second.
WORDS_PER_SECOND = 2.5
MAX_SHOTS = 5

SYSTEM = (
    "You are a senior campaign strategist and copywriter. You turn a marketing brief into a campaign PRD and a "
    "plan of stories that a creative team will produce with image and video generation models. Customer-facing "
    "copy speaks to the audience in the second person and in the brand's voice; it never repeats the brief's "
    "internal wording. Prompts are concrete and visual. Answer with JSON that follows the schema."
)


class ShotDraft(BaseModel):
    prompt: text(800, 1) = Field(description="What the clip shows: subject, setting, light, camera.")
    duration_s: float = Field(ge=2, le=10, description="Seconds on screen.")
    camera_motion: CameraMotion
    continues_previous: bool = Field(
        description="Starts where the previous shot ended (never the first shot)."
    )
    caption: text(80) = Field(description="On-screen text, or empty.")


class StoryDraft(BaseModel):
    title: text(120, 1)
    type: StoryType
    user_story: text(400, 1) = Field(description="As <who>, I want <what>, so that <why>.")
    acceptance_criteria: list[text(200, 1)] = Field(
        min_length=2, max_length=6, description="Checks a reviewer can see in the media."
    )
    headline: text(80, 1)
    body: text(400, 1)
    cta: text(40, 1)
    keyframe_prompt: text(1000, 1) = Field(description="The key visual, for an image model.")
    voice_over: text(800) = Field(description="Spoken over the story's shots; empty for a still design.")
    shots: list[ShotDraft] = Field(max_length=MAX_SHOTS, description="Empty for a still design.")


class LanguagePlanner:
    def __init__(self, model: LanguageModel):
        self.llm = model
        self.name = model.name

    def plan(self, brief: Brief, model: str | None = None) -> Plan:
        avoid = tuple(brief.brand.avoid)
        prd = self.llm.ask(
            Question(purpose="plan", system=SYSTEM, user=_prd_request(brief)), Prd, model=model, avoid=avoid
        )
        channels = _story_channels(brief)
        stories: list[Story] = []
        for start in range(0, len(channels), STORIES_PER_ANSWER):
            part = channels[start : start + STORIES_PER_ANSWER]
            batch = self.llm.ask(
                Question(purpose="plan", system=SYSTEM, user=_stories_request(brief, prd, part, stories)),
                _batch_of(len(part)),
                model=model,
                avoid=avoid,
            )
            drafts = [_fitted(draft, channel) for draft, channel in zip(batch.stories, part, strict=True)]
            stories += [_story(d, c, start + n) for n, (d, c) in enumerate(zip(drafts, part, strict=True))]
        return Plan(campaign_id=brief.campaign_id, campaign=brief.campaign, stories=stories, prd=prd)


def _story_channels(brief: Brief) -> list[Channel]:
    count = brief.stories or len(brief.channels)
    return [brief.channels[i % len(brief.channels)] for i in range(count)]


def _brief_text(brief: Brief) -> list[str]:
    brand = brief.brand
    return [
        f"Campaign: {brief.campaign}",
        f"Brand: {brand.name}; voice: {brand.voice or 'not given'}; palette: {', '.join(brand.palette)}",
        f"Goal: {brief.goal}",
        f"Audience: {brief.audience}",
        f"Channels: {', '.join(c.value for c in brief.channels)}",
        *([f"Timeline: {brief.timeline}"] if brief.timeline else []),
        f"Budget: ${brief.budget_usd:.0f} for all generated media",
        *([f"Never use these words anywhere: {', '.join(brand.avoid)}"] if brand.avoid else []),
    ]


def _prd_request(brief: Brief) -> str:
    return "\n".join(
        [
            *_brief_text(brief),
            "",
            "Write the campaign PRD: a summary, objectives, key messages, audience insights, a strategy for each "
            "channel above, KPIs with numeric targets and a time frame, and the risks.",
        ]
    )


def _stories_request(brief: Brief, prd: Prd, channels: list[Channel], before: list[Story]) -> str:
    asked = [
        f"{n}. channel {c.value} ({primary_format(c).aspect.value}, at most {primary_format(c).max_duration_s:g} s)"
        for n, c in enumerate(channels, 1)
    ]
    return "\n".join(
        [
            *_brief_text(brief),
            "",
            prd.markdown(brief.campaign),
            "",
            f"Write {len(channels)} stories, one per line below, in this order:",
            *asked,
            "Types: video, social and avatar stories move (2 to 4 shots, 3 to 6 seconds each); a design is a still "
            "(no shots, no voice-over); an email story is a short hero loop (one shot). Email channel stories are "
            f"type email. Each voice-over can be read in its shots' running time ({WORDS_PER_SECOND:g} words a "
            "second). Stories differ from each other in angle, copy and visuals.",
            *(
                [f"Stories planned already (do not repeat them): {'; '.join(s.title for s in before[-12:])}"]
                if before
                else []
            ),
        ]
    )


def _batch_of(count: int) -> type[BaseModel]:
    """The answer's form for `count` stories, exactly: the count is the schema's, so no answer can miss it."""
    return create_model("StoryBatch", stories=(list[StoryDraft], Field(min_length=count, max_length=count)))


def _fitted(draft: StoryDraft, channel: Channel) -> StoryDraft:
    """A story made to fit its channel where a model drifted, without another paid round: an email story is
    type email, a design has no shots, the shots fit the channel's longest reel, the voice-over its running time."""
    kind = StoryType.email if channel is Channel.email else draft.type
    shots = [] if kind is StoryType.design else list(draft.shots)
    limit = primary_format(channel).max_duration_s
    while len(shots) > 1 and sum(s.duration_s for s in shots) > limit:
        shots.pop()
    seconds = sum(s.duration_s for s in shots)
    words = draft.voice_over.split()
    budget = int(seconds * WORDS_PER_SECOND)
    voice = " ".join(words) if len(words) <= budget else " ".join(words[:budget]).rstrip(",;:") + "."
    return draft.model_copy(update={"type": kind, "shots": shots, "voice_over": voice if shots else ""})


def _story(draft: StoryDraft, channel: Channel, index: int) -> Story:
    aspect = primary_format(channel).aspect
    shots = [
        Shot(
            prompt=s.prompt,
            duration_s=s.duration_s,
            aspect=aspect,
            camera_motion=s.camera_motion,
            continues_previous=s.continues_previous and n > 0,
            caption=s.caption,
            hero=n == 0,
        )
        for n, s in enumerate(draft.shots)
    ]
    return Story(
        id=f"s{index + 1:02d}-{channel.value}-{draft.type.value}",
        title=draft.title,
        type=draft.type,
        channel=channel,
        objective=draft.user_story,
        copy=Copy(headline=draft.headline, body=draft.body, cta=draft.cta),
        voice_over=draft.voice_over if shots else "",
        keyframe_prompt=draft.keyframe_prompt,
        shots=shots,
        user_story=draft.user_story,
        acceptance_criteria=list(draft.acceptance_criteria),
    )
