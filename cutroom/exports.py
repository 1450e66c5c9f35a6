"""Which reels a campaign exports, and which stories each one cuts together."""

from __future__ import annotations

import logging

from pydantic import BaseModel

from cutroom.assembly import reel_duration
from cutroom.brief import Brief
from cutroom.channels import Channel, Format, formats
from cutroom.manifest import StoryResult, StoryStatus
from cutroom.plan import Plan

log = logging.getLogger(__name__)

#: Assembly lays clips on a frame clock, so its length can differ from the measured seconds by a few frames: a
#: story up to this much past the limit is still handed to it, and assembly has the last word.
FRAME_CLOCK_SLACK_S = 1.0


class ReelPlan(BaseModel):
    channel: Channel
    format: Format
    stories: list[StoryResult]
    cta: str


def reel_plans(
    brief: Brief, plan: Plan, results: list[StoryResult], crossfade_s: float, end_card_s: float
) -> list[ReelPlan]:
    """A reel per format of every requested channel, from that channel's finished moving stories.

    A channel whose stories are all stills (or failed) borrows the campaign's finished moving stories,
    so every requested format still gets a reel; failed stories are never cut in. A reel holds the leading
    stories that fit its format's length, so a large campaign's reel fetches and reads only those.
    """
    done = {r.story_id: r for r in results if r.status is StoryStatus.complete and r.clips}
    moving = [s for s in plan.stories if s.id in done]
    reels = []
    for channel in brief.channels:
        own = [s for s in moving if s.channel is channel] or moving
        if not own:
            continue
        for fmt in formats(channel):
            stories = fitting([done[s.id] for s in own], fmt, crossfade_s, end_card_s)
            if len(stories) < len(own):
                log.info(
                    "the %s %s reel holds the first %d of %d stories (its limit is %g s)",
                    channel.value, fmt.aspect.value, len(stories), len(own), fmt.max_duration_s,
                )  # fmt: skip
            reels.append(ReelPlan(channel=channel, format=fmt, stories=stories, cta=own[0].copy_.cta))
    return reels


def fitting(
    stories: list[StoryResult], fmt: Format, crossfade_s: float, end_card_s: float
) -> list[StoryResult]:
    """The leading stories whose clips, at the lengths they were measured at, fit the format's limit; at least
    the first (assembly then says it runs too long). A clip of unknown length counts as none."""
    lengths: list[float] = []
    for n, story in enumerate(stories):
        lengths += [clip.duration_s or 0.0 for clip in story.clips]
        if n and reel_duration(lengths, crossfade_s, end_card_s) > fmt.max_duration_s + FRAME_CLOCK_SLACK_S:
            return stories[:n]
    return stories
