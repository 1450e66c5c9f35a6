"""Which stories each reel is cut from: only as many as fit its format, so a large campaign's reel stays small."""

from __future__ import annotations

import pytest

from cutroom.assembly import reel_duration
from cutroom.assets import Asset, AssetKind
from cutroom.brief import parse_brief
from cutroom.channels import formats
from cutroom.exports import reel_plans
from cutroom.manifest import StoryResult, StoryStatus
from providers.local.planner import LocalPlanner

BRIEF = parse_brief(
    {
        "campaign": "Big Send",
        "brand": {"name": "Fern", "palette": ["#224422", "#F0E68C"]},
        "goal": "sell the spring collection",
        "audience": "gardeners",
        "channels": ["email"],
        "stories": 12,
    }
)
PLAN = LocalPlanner().plan(BRIEF)
FADE_S, CARD_S = 0.5, 2.5


def made(story_id: str, *lengths_s: float | None) -> StoryResult:
    clips = [
        Asset(
            spec_key=f"{story_id}-{n}",
            kind=AssetKind.video,
            provider="local",
            model="animatic",
            prompt="a garden at dawn",
            uri=f"file:///clips/{story_id}-{n}.mp4",
            sha256="0" * 64,
            mime="video/mp4",
            duration_s=length_s,
        )
        for n, length_s in enumerate(lengths_s)
    ]
    return StoryResult(story_id=story_id, status=StoryStatus.complete, clips=clips)


def held(*lengths_s: float | None) -> list[str]:
    results = [made(s.id, *lengths_s) for s in PLAN.stories]
    (reel,) = reel_plans(BRIEF, PLAN, results, FADE_S, CARD_S)
    return [r.story_id for r in reel.stories]


def test_a_reel_is_cut_from_the_leading_stories_that_fit_its_format():
    (email,) = formats(BRIEF.channels[0])
    assert (
        reel_duration([8.0] * 3, FADE_S, CARD_S)
        <= email.max_duration_s
        < reel_duration([8.0] * 4, FADE_S, CARD_S)
    )

    assert held(8.0) == [s.id for s in PLAN.stories[:3]]
    assert held(5.0, 5.0) == [s.id for s in PLAN.stories[:3]]


@pytest.mark.parametrize(
    ("lengths_s", "stories"),
    [((40.0,), 1), ((None,), 12)],
    ids=[
        "a first story too long alone is kept for assembly to refuse",
        "clips of unknown length count as none",
    ],
)
def test_what_cannot_be_judged_from_recorded_lengths_is_left_to_assembly(lengths_s, stories: int):
    assert held(*lengths_s) == [s.id for s in PLAN.stories[:stories]]
