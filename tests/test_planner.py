"""The rule-based planner: stories that suit their channels, copy from the brief, shots that carry the brand."""

from __future__ import annotations

import pytest

from cutroom.brief import parse_brief
from cutroom.channels import Aspect
from cutroom.plan import StoryType
from providers.local.planner import WORDS_PER_SECOND, LocalPlanner

BRIEF = {
    "campaign": "Aurora Launch",
    "brand": {
        "name": "Aurora",
        "voice": "bright, optimistic",
        "palette": ["#0B3D91", "#FC3D21"],
        "avoid": ["cheap", "guaranteed"],
    },
    "goal": "launch the guaranteed cheap Aurora lamp that wakes you with sunrise light",
    "audience": "busy professionals",
    "channels": ["tiktok", "instagram", "youtube", "linkedin", "email"],
}


@pytest.fixture
def plan():
    return LocalPlanner().plan(parse_brief(BRIEF))


def test_one_story_per_channel_by_default(plan):
    assert [s.channel.value for s in plan.stories] == BRIEF["channels"]
    assert len({s.id for s in plan.stories}) == len(plan.stories)


def test_story_count_is_honoured_and_spread_over_channels():
    plan = LocalPlanner().plan(parse_brief({**BRIEF, "channels": ["instagram", "email"], "stories": 5}))
    assert [s.channel.value for s in plan.stories] == [
        "instagram",
        "email",
        "instagram",
        "email",
        "instagram",
    ]
    assert [s.type for s in plan.stories if s.channel == "instagram"] == [
        StoryType.video,
        StoryType.social,
        StoryType.design,
    ]


def test_types_suit_their_channels(plan):
    types = {s.channel.value: s.type for s in plan.stories}
    assert types["tiktok"] is StoryType.video
    assert types["youtube"] is StoryType.video
    assert types["email"] is StoryType.email
    assert types["linkedin"] is StoryType.social


def test_shots_use_the_channel_format_and_chain(plan):
    tiktok, youtube = plan.stories[0], plan.stories[2]
    assert {s.aspect for s in tiktok.shots} == {Aspect.vertical}
    assert {s.aspect for s in youtube.shots} == {Aspect.landscape}
    assert [s.continues_previous for s in tiktok.shots] == [False, True, False]
    assert len({s.camera_motion for s in tiktok.shots}) == len(tiktok.shots)


def test_text_never_sits_on_a_frame_the_next_shot_continues_from(plan):
    for story in plan.stories:
        for shot, following in zip(story.shots, story.shots[1:], strict=False):
            if following.continues_previous:
                assert shot.caption == ""
    video = plan.stories[0]
    assert [s.caption for s in video.shots] == ["", video.copy_.headline, video.copy_.cta]


def test_design_stories_are_stills():
    plan = LocalPlanner().plan(parse_brief({**BRIEF, "channels": ["linkedin"], "stories": 2}))
    design = plan.stories[1]
    assert design.type is StoryType.design and not design.shots and not design.voice_over


def test_copy_and_prompts_come_from_the_brief(plan):
    for story in plan.stories:
        assert "Aurora" in story.copy_.headline
        assert "busy professionals" in story.copy_.body
        assert story.copy_.cta == "Discover it today"
        assert "#0B3D91" in story.keyframe_prompt and "bright, optimistic" in story.keyframe_prompt
        for shot in story.shots:
            assert "#0B3D91" in shot.prompt and "sunrise light" in shot.prompt


def test_avoided_words_never_appear(plan):
    text = plan.model_dump_json(by_alias=True).lower()
    assert "cheap" not in text and "guaranteed" not in text


def test_voice_over_fits_the_running_time(plan):
    for story in plan.stories:
        if story.shots:
            assert story.voice_over.endswith(".")
            assert len(story.voice_over.split()) <= max(4, int(story.duration_s * WORDS_PER_SECOND))
            assert story.copy_.cta in story.voice_over


def test_cta_follows_the_goal():
    plan = LocalPlanner().plan(parse_brief({**BRIEF, "goal": "book a table for the new winter menu"}))
    assert plan.stories[0].copy_.cta == "Book your visit"


def test_same_brief_same_plan():
    brief = parse_brief(BRIEF)
    assert LocalPlanner().plan(brief) == LocalPlanner().plan(brief)
