"""A rule-based planner: brief → typed stories with copy and shots, and a PRD; deterministic, no model needed."""

from __future__ import annotations

import re
from itertools import cycle

from cutroom.avoid import without
from cutroom.brief import Brief
from cutroom.channels import Channel, primary_format
from cutroom.plan import CameraMotion, Copy, Plan, Shot, Story, StoryType
from providers.local.copywriting import Copywriter, Pitch, read_pitch, sentence
from providers.local.phrasebook import CHANNEL_NAMES
from providers.local.prd import write_prd

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


class LocalPlanner:
    name = "local"
    model = "rules-1"

    def plan(self, brief: Brief, model: str | None = None) -> Plan:
        """The plan by the rules (`model` is a language model's to use: there is one rule set)."""
        count = brief.stories or len(brief.channels)
        channels = [brief.channels[i % len(brief.channels)] for i in range(count)]
        pitch = read_pitch(brief)
        writer = Copywriter(pitch)
        seen: dict[Channel, int] = {}
        stories = []
        for index, channel in enumerate(channels):
            nth = seen.get(channel, 0)
            seen[channel] = nth + 1
            story_type = CHANNEL_TYPES[channel][nth % len(CHANNEL_TYPES[channel])]
            stories.append(self._story(brief, writer, index, channel, story_type))
        return Plan(
            campaign_id=brief.campaign_id,
            campaign=brief.campaign,
            stories=stories,
            prd=write_prd(brief, pitch, stories),
        )

    def _story(
        self, brief: Brief, writer: Copywriter, index: int, channel: Channel, story_type: StoryType
    ) -> Story:
        brand, pitch = brief.brand, writer.pitch
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
        duration = sum(s.duration_s for s in shots)
        copy, voice_over = writer.write(channel, index, duration)
        _caption(shots, [copy.headline, copy.cta])
        return Story(
            id=f"s{index + 1:02d}-{channel.value}-{story_type.value}",
            title=f"{copy.headline} ({channel.value} {story_type.value})",
            type=story_type,
            channel=channel,
            objective=_clean(f"{sentence(brief.goal)} Reach {brief.audience} on {channel.value}.", brief),
            copy=copy,
            voice_over=voice_over,
            keyframe_prompt=_clean(f"key visual: {subject}; {mood}", brief),
            shots=shots,
            user_story=_user_story(brief, pitch, channel, story_type, duration),
            acceptance_criteria=_criteria(brief, pitch, copy, story_type),
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


#: What a reader wants from each kind of story, for its user story.
WANTS: dict[StoryType, str] = {
    StoryType.video: "a {seconds:g}-second {channel} video that shows me {offer} in action",
    StoryType.social: "{a} {channel} post that tells me about {offer} at a glance",
    StoryType.design: "{a} {channel} visual about {offer} I can read in one look",
    StoryType.email: "an email that makes the case for {offer}",
    StoryType.avatar: "a presenter who walks me through {offer} on {channel}",
}


def _user_story(brief: Brief, pitch: Pitch, channel: Channel, story_type: StoryType, seconds: float) -> str:
    """Internal, so it names the audience as the brief does; the copy never does."""
    audience = re.sub(r"^(?:the|a|an)\s+", "", brief.audience, flags=re.IGNORECASE)
    first = audience.split()[0]
    who = audience if first.isupper() else audience[0].lower() + audience[1:]
    name = CHANNEL_NAMES[channel]
    want = WANTS[story_type].format(
        a="an" if name[0] in "AEIOUX" else "a",
        seconds=seconds,
        channel=name,
        offer=f"{pitch.brand}'s {pitch.offer}",
    )
    return _clean(f"As one of the {who}, I want {want}, so that I can {pitch.kind.outcome}.", brief)


def _criteria(brief: Brief, pitch: Pitch, copy: Copy, story_type: StoryType) -> list[str]:
    """Checks a vision judge can score on the finished media: at most five, the brand's avoid list kept."""
    checks = [
        f"The brand name '{pitch.brand}' is legible",
        f"The headline reads '{copy.headline}'",
        _clean(f"It shows {pitch.brand}'s {pitch.offer}", brief),
        f"The colours follow the palette {', '.join(brief.brand.palette)}",
    ]
    if brief.brand.avoid:
        checks.append(f"Nothing in it says {', '.join(repr(w) for w in brief.brand.avoid)}")
    elif SHOT_RECIPES[story_type]:
        checks.append(f"It closes on the call to action '{copy.cta}'")
    return checks


def _clean(text: str, brief: Brief) -> str:
    """Drop every word the brand asked us to avoid, wherever the brief's own text carried it in."""
    return without(text, brief.brand.avoid)
