"""Which reels a campaign exports, and which stories each one cuts together."""

from __future__ import annotations

from pydantic import BaseModel

from cutroom.brief import Brief
from cutroom.channels import Channel, Format, formats
from cutroom.manifest import StoryResult, StoryStatus
from cutroom.plan import Plan


class ReelPlan(BaseModel):
    channel: Channel
    format: Format
    stories: list[StoryResult]
    cta: str


def reel_plans(brief: Brief, plan: Plan, results: list[StoryResult]) -> list[ReelPlan]:
    """A reel per format of every requested channel, from that channel's finished moving stories.

    A channel whose stories are all stills (or failed) borrows the campaign's finished moving stories,
    so every requested format still gets a reel; failed stories are never cut in.
    """
    done = {r.story_id: r for r in results if r.status is StoryStatus.complete and r.clips}
    moving = [s for s in plan.stories if s.id in done]
    reels = []
    for channel in brief.channels:
        own = [s for s in moving if s.channel is channel] or moving
        if not own:
            continue
        for fmt in formats(channel):
            reels.append(
                ReelPlan(channel=channel, format=fmt, stories=[done[s.id] for s in own], cta=own[0].copy_.cta)
            )
    return reels
