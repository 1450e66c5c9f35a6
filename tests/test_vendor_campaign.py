"""A campaign on real vendor adapters (Luma images, Runway clips) against the simulator, under faults."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from cutroom.brief import parse_brief
from cutroom.manifest import StoryStatus

BRIEF = {
    "campaign": "Vendor Run",
    "brand": {"name": "Osprey", "palette": ["#0D1B2A", "#E0E1DD", "#FF6B35"]},
    "goal": "sell sea kayak tours",
    "audience": "weekend adventurers",
    "channels": ["tiktok", "linkedin"],
    "quality_target": 60,
    "max_iterations": 2,
    "providers": {"image": ["luma"], "video": ["runway"]},
}
CREATES = ("/luma/dream-machine/v1/generations/image", "/runway/v1/image_to_video")


def run(brief: dict, out) -> object:
    from flows.campaign import campaign

    return asyncio.run(campaign(parse_brief(brief), str(out)))


def test_a_campaign_completes_on_vendors_with_a_fifth_of_requests_faulted(flows_on_simulator, tmp_path):
    flows_on_simulator.reset(
        latency_scale=0.02, fault_rate=0.2, faults=["429", "5xx", "reset"], retry_after_s=0.2, seed=7
    )
    manifest = run(BRIEF, tmp_path / "out")

    assert manifest.status == "complete", [s.error for s in manifest.stories]
    assert all(s.status is StoryStatus.complete for s in manifest.stories)
    log = flows_on_simulator.requests()
    faulted = [r for r in log if r["fault"]]
    assert len(faulted) >= 0.1 * len(log), "the run met too few faults to prove anything"
    accepted = [r for r in log if r["method"] == "POST" and r["path"] in CREATES and r["status"] == 200]
    made = [
        a for s in manifest.stories for a in [*s.candidates, *s.clips] if a.provider in ("luma", "runway")
    ]
    # Every job the vendors accepted became exactly one stored asset: nothing was paid for twice.
    assert len(accepted) == len(made)
    assert Counter(a.provider for a in made) == Counter(
        "luma" if r["vendor"] == "luma" else "runway" for r in accepted
    )
    assert (
        manifest.ledger.spent_usd == pytest.approx(sum(a.cost_usd for a in made))
        and manifest.ledger.spent_usd > 0
    )
    assert {(e.channel.value, e.aspect.value) for e in manifest.exports} == {
        ("tiktok", "9:16"),
        ("linkedin", "1:1"),
    }


def test_a_story_made_entirely_on_luma_chains_its_shots(flows_on_simulator, tmp_path):
    flows_on_simulator.reset(latency_scale=0.01)
    brief = {**BRIEF, "channels": ["tiktok"], "providers": {"image": ["luma"], "video": ["luma"]}}
    manifest = run(brief, tmp_path / "out")

    (story,) = manifest.stories
    assert story.status is StoryStatus.complete, story.error
    assert [c.provider for c in story.clips] == ["luma"] * 3 and all(c.job_id for c in story.clips)
    creates = [
        r
        for r in flows_on_simulator.requests()
        if r["path"].endswith("/generations/video") and r["status"] == 200
    ]
    frames = [c["body"]["keyframes"]["frame0"] for c in creates]
    by_prompt = {c["body"]["prompt"]: f for c, f in zip(creates, frames, strict=True)}
    first, second, third = (by_prompt[s.prompt] for s in manifest.plan.stories[0].shots)
    # Shot 1 starts from the Photon keyframe's own URL, shot 2 continues shot 1's generation, shot 3 re-opens.
    assert first == {"type": "image", "url": story.keyframe.source_url}
    assert second == {"type": "generation", "id": story.clips[0].job_id}
    assert third["type"] == "image"
    assert [c.continuity for c in story.clips] == [None, "chained", None]
    assert {c["body"]["duration"] for c in creates} == {"5s"}  # 4 s shots snap to Luma's 5 s
