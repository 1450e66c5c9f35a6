"""manifest.json as a user's tools read it: written a story at a time, it is the same text the whole record dumps
to, and it lists every paid call of the ledger without a second copy of each asset."""

from __future__ import annotations

import io
import json

import pytest

from cutroom.assets import Asset, AssetKind, AssetSpec
from cutroom.brief import parse_brief
from cutroom.capabilities import Capability
from cutroom.ledger import Ledger, LedgerSummary, summarise
from cutroom.manifest import CampaignStatus, Export, Manifest, StoryResult, StoryStatus, write_manifest
from cutroom.storage import LocalStorage
from providers import registry
from tests.test_durable import BRIEF


def asset(story_id: str, kind: AssetKind, n: int) -> Asset:
    return Asset(
        spec_key=f"{story_id}-{kind.value}-{n}",
        kind=kind,
        provider="luma",
        model="ray-2",
        prompt=f'{story_id}: "quoted", a tab\there\nand a new line',  # escapes stay escapes in every line
        params={"aspect": "9:16", "style": {"palette": ["#3E2723"]}},
        uri=f"file:///out/{story_id}/{n}.bin",
        sha256=f"{n:064x}",
        mime="video/mp4" if kind is AssetKind.video else "image/png",
        story_id=story_id,
        iteration=n,
    )


def manifest(stories: int) -> Manifest:
    brief = parse_brief({**BRIEF, "id": "manifest-text"})
    plan = registry.provider(Capability.planner, "local").plan(brief)
    results = [
        StoryResult(
            story_id=f"s{n}",
            status=StoryStatus.complete if n % 2 else StoryStatus.failed,
            error=None if n % 2 else "the clip was refused",
            keyframe=asset(f"s{n}", AssetKind.image, 2),
            candidates=[asset(f"s{n}", AssetKind.image, 1), asset(f"s{n}", AssetKind.image, 2)],
            clips=[asset(f"s{n}", AssetKind.video, 3)],
        )
        for n in range(stories)
    ]
    return Manifest(
        campaign=brief.campaign,
        campaign_id=brief.campaign_id,
        status=CampaignStatus.partial,
        brief=brief,
        plan=plan,  # its stories hold a "stories" key of their own, further in
        stories=results,
        exports=[
            Export(
                channel="tiktok",
                aspect="9:16",
                uri="file:///out/r.mp4",
                sha256="0" * 64,
                duration_s=9.5,
                width=720,
                height=1280,
                stories=[r.story_id for r in results],
            )  # fmt: skip
        ],
        ledger=LedgerSummary(budget_usd=20, estimated_usd=1.5, spent_usd=0),
    )


@pytest.mark.parametrize("stories", [0, 1, 3])
def test_a_manifest_written_a_story_at_a_time_is_the_text_the_whole_record_dumps_to(stories):
    made = manifest(stories)
    written = io.BytesIO()
    write_manifest(made, written)
    assert written.getvalue().decode() == made.model_dump_json(indent=2, by_alias=True)
    assert Manifest.model_validate_json(written.getvalue()) == made


def test_the_ledger_lists_every_paid_call_and_keeps_its_asset_for_a_rerun_only(tmp_path):
    ledger = Ledger(LocalStorage(tmp_path), "c")
    clip = AssetSpec(kind=AssetKind.video, provider="luma", model="ray-2", prompt="a kayak at dawn")
    ledger.reserve(clip, 0.4, 20, "s1")
    ledger.submitted(clip.key(), "job-1", {"region": "eu"})
    ledger.settled(clip.key(), 0.4, asset("s1", AssetKind.video, 1))
    ledger.hold("plan-1", "openai", "gpt-4.1", 0.01, 20, None, "openai/gpt-4.1 plan")

    summary = summarise(Ledger(LocalStorage(tmp_path), "c"), 20, 0.5, [])

    assert summary.spent_usd == 0.4 and summary.reserved_usd == 0.01
    listed = json.loads(summary.model_dump_json())["entries"]
    assert [(e["provider"], e["state"], e["job_id"], e["paid_usd"]) for e in listed] == [
        ("luma", "settled", "job-1", 0.4),
        ("openai", "reserved", None, 0.0),
    ]
    assert listed[0]["story_id"] == "s1" and listed[0]["note"] == "luma/ray-2 video"
    assert all("asset" not in e and "handle" not in e for e in listed)
    kept = Ledger(LocalStorage(tmp_path), "c").entry(clip.key())
    assert kept.asset.uri == "file:///out/s1/1.bin" and kept.handle == {"region": "eu"}  # what a rerun reuses
