"""A rule-based planner: brief → typed stories with copy and shots, deterministic, no model needed."""

from __future__ import annotations

import re
from itertools import cycle

from cutroom.brief import Brief
from cutroom.channels import Channel, primary_format
from cutroom.plan import CameraMotion, Copy, Plan, Shot, Story, StoryType

#: What each channel's stories become, in rotation when a channel gets several.
CHANNEL_TYPES: dict[Channel, tuple[StoryType, ...]] = {
    Channel.tiktok: (StoryType.video,),
    Channel.instagram: (StoryType.video, StoryType.social, StoryType.design),
    Channel.youtube: (StoryType.video,),
    Channel.facebook: (StoryType.social, StoryType.video),
    Channel.linkedin: (StoryType.social, StoryType.design),
    Channel.x: (StoryType.social, StoryType.design),
    Channel.email: (StoryType.email,),
}

#: (shot framing, seconds) per story type; a still design has no shots.
SHOT_RECIPES: dict[StoryType, tuple[tuple[str, float], ...]] = {
    StoryType.video: (("wide establishing shot", 4.0), ("close-up detail", 4.0), ("hero moment", 4.0)),
    StoryType.social: (("bold opening frame", 3.5), ("close-up detail", 3.5)),
    StoryType.avatar: (("presenter to camera", 6.0),),
    StoryType.email: (("hero banner loop", 5.0),),
    StoryType.design: (),
}

MOTIONS = (CameraMotion.push_in, CameraMotion.pan_right, CameraMotion.pull_out, CameraMotion.tilt_up)

#: Calls to action keyed by what the goal talks about; the first match wins.
CTAS = (
    (("sign", "register", "join", "subscribe"), "Sign up now"),
    (("download", "install", "app"), "Get the app"),
    (("buy", "sale", "sell", "shop", "order"), "Shop now"),
    (("book", "reserve", "visit"), "Book your visit"),
    (("donat", "support", "give"), "Give today"),
    (("launch", "new", "introduc", "release"), "Discover it today"),
)

ANGLES = ("Meet", "Why", "Made for", "Inside", "Ready for", "The story of")
WORDS_PER_SECOND = 2.4


class LocalPlanner:
    name = "local"
    model = "rules-1"

    def plan(self, brief: Brief) -> Plan:
        count = brief.stories or len(brief.channels)
        channels = [brief.channels[i % len(brief.channels)] for i in range(count)]
        seen: dict[Channel, int] = {}
        stories = []
        for index, channel in enumerate(channels):
            nth = seen.get(channel, 0)
            seen[channel] = nth + 1
            story_type = CHANNEL_TYPES[channel][nth % len(CHANNEL_TYPES[channel])]
            stories.append(self._story(brief, index, channel, story_type))
        return Plan(campaign_id=brief.campaign_id, campaign=brief.campaign, stories=stories)

    def _story(self, brief: Brief, index: int, channel: Channel, story_type: StoryType) -> Story:
        brand = brief.brand
        angle = ANGLES[index % len(ANGLES)]
        copy = Copy(
            headline=_clean(
                f"{angle} {brand.name}" if angle != "Made for" else f"{brand.name}, made for you", brief
            ),
            body=_clean(f"{_sentence(_subject(brief.goal))} Built for {brief.audience}.", brief),
            cta=_clean(_cta(brief.goal), brief),
        )
        mood = f"mood {brand.voice}; palette {' '.join(brand.palette)}"
        subject = _clean(
            f"{brand.name} {story_type.value} for {channel.value}, {brief.goal.rstrip('.')}", brief
        )
        aspect = primary_format(channel).aspect
        shots = []
        for n, ((framing, seconds), motion) in enumerate(
            zip(SHOT_RECIPES[story_type], cycle(MOTIONS[index % len(MOTIONS) :] + MOTIONS), strict=False)
        ):
            shots.append(
                Shot(
                    prompt=_clean(f"{framing} of {subject}; {mood}", brief),
                    duration_s=seconds,
                    aspect=aspect,
                    camera_motion=motion,
                    continues_previous=n == 1,
                    hero=n == 0,
                )
            )
        _caption(shots, [copy.headline, copy.cta])
        duration = sum(s.duration_s for s in shots)
        voice_over = (
            _fit([f"{copy.headline}.", *_sentences(copy.body), f"{copy.cta}."], duration) if shots else ""
        )
        return Story(
            id=f"s{index + 1:02d}-{channel.value}-{story_type.value}",
            title=f"{copy.headline} ({channel.value} {story_type.value})",
            type=story_type,
            channel=channel,
            objective=_clean(f"{_sentence(brief.goal)} Reach {brief.audience} on {channel.value}.", brief),
            copy=copy,
            voice_over=voice_over,
            keyframe_prompt=_clean(f"key visual: {subject}; {mood}", brief),
            shots=shots,
        )


def _caption(shots: list[Shot], texts: list[str]) -> None:
    """Headline first, call to action last, each on a shot no other shot continues from.

    A continuing shot starts from the previous clip's last frame, so text on that frame would be baked in twice.
    """
    carriers = [s for i, s in enumerate(shots) if i + 1 == len(shots) or not shots[i + 1].continues_previous]
    if carriers:
        carriers[0].caption = texts[0]
    if len(carriers) > 1:
        carriers[-1].caption = texts[-1]


def _sentence(text: str) -> str:
    text = text.strip()
    return text[0].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")


#: Marketing verbs that open a goal ("launch the lamp") but should not open the copy ("The lamp").
GOAL_VERBS = ("launch", "introduce", "promote", "announce", "sell", "showcase", "market", "advertise")


def _subject(goal: str) -> str:
    return re.sub(rf"^\s*(?:{'|'.join(GOAL_VERBS)})\s+", "", goal, flags=re.IGNORECASE)


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def _cta(goal: str) -> str:
    lowered = goal.lower()
    return next((cta for keys, cta in CTAS if any(k in lowered for k in keys)), "Learn more")


def _clean(text: str, brief: Brief) -> str:
    """Drop every word the brand asked us to avoid, wherever the brief's own text carried it in."""
    for word in brief.brand.avoid:
        text = re.sub(rf"\s*\b{re.escape(word)}\b", "", text, flags=re.IGNORECASE)
    return re.sub(r"\s{2,}", " ", text).strip()


def _fit(sentences: list[str], seconds: float) -> str:
    """A voice-over that can be spoken in the story's running time: middle sentences go first."""
    limit = max(4, int(seconds * WORDS_PER_SECOND))
    kept = list(sentences)
    while len(kept) > 2 and sum(len(s.split()) for s in kept) > limit:
        kept.pop(-2)
    words = " ".join(kept).split()
    return " ".join(words) if len(words) <= limit else " ".join(words[:limit]).rstrip(",;:.") + "."
