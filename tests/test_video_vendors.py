"""Every video vendor as a user meets it: a campaign whose brief prefers V for its clips completes on V, on S3
(where a vendor that fetches its inputs gets them), with clips of the lengths and shapes V's card promises; under
faults it pays for each clip once, and a shot that continues the previous one is joined to it, as the vendor
allows: chained from the previous generation itself, or started from its last frame."""

from __future__ import annotations

import asyncio
import json

import pytest
from PIL import Image

from cutroom.assets import Continuity
from cutroom.brief import parse_brief
from cutroom.capabilities import Capability
from cutroom.manifest import StoryStatus
from cutroom.storage import S3Storage
from providers import declarations
from tests.helpers import cutroom

VIDEO_VENDORS = sorted(
    v.name
    for v in declarations.vendors().values()
    if Capability.video in v.adapters and v.simulator and v.billable
)

BRIEF = {
    "campaign": "Vendor Clips",
    "brand": {"name": "Osprey", "palette": ["#0D1B2A", "#E0E1DD", "#FF6B35"]},
    "goal": "sell sea kayak tours",
    "audience": "weekend adventurers",
    "channels": ["tiktok"],
    "stories": 1,
    "quality_target": 1,
    "max_iterations": 1,
}


@pytest.mark.parametrize("vendor", VIDEO_VENDORS)
def test_cutroom_generate_video_from_a_local_image_works_once_storage_is_on_s3(
    vendor, simulator, s3, prefect_server, tmp_path
):
    simulator.reset(latency_scale=0.01)
    start = tmp_path / "start.png"
    Image.new("RGB", (720, 1280), (30, 90, 160)).save(start)
    env = {"CUTROOM_SIMULATOR_URL": simulator.url, "CUTROOM_STORAGE": f"s3://{s3.bucket}/generate-{vendor}"}
    made = cutroom("generate", "video", "--provider", vendor, "--prompt", "waves roll onto a pebble beach",
                   "--aspect", "9:16", "--image", str(start), "--out", str(tmp_path / "clip.mp4"), env=env)  # fmt: skip
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
    assert (tmp_path / "clip.mp4").stat().st_size > 0
    paid = [job for job in simulator.jobs() if job["vendor"] == vendor]
    assert len(paid) == 1, paid  # the clip only: the start image was the user's, uploaded, not made
    inputs = S3Storage(env["CUTROOM_STORAGE"]).keys("")
    assert any("/inputs/" in key for key in inputs), (
        inputs
    )  # beside the campaign, handed over by a presigned link


LINKS_ONLY = [name for name in VIDEO_VENDORS if declarations.vendor(name).links_only]


@pytest.mark.parametrize("vendor", LINKS_ONLY)
def test_a_vendor_that_fetches_its_inputs_says_what_to_configure_when_storage_is_local(
    vendor, simulator, prefect_server, tmp_path
):
    simulator.reset(latency_scale=0.01)
    start = tmp_path / "start.png"
    Image.new("RGB", (720, 1280), (30, 90, 160)).save(start)
    env = {"CUTROOM_SIMULATOR_URL": simulator.url, "CUTROOM_STORAGE": str(tmp_path / "work")}
    made = cutroom("generate", "video", "--provider", vendor, "--prompt", "waves roll onto a pebble beach",
                   "--image", str(start), "--out", str(tmp_path / "clip.mp4"), env=env)  # fmt: skip
    said = " ".join((made.stdout + made.stderr).split())
    assert made.returncode == 2, said
    assert "CUTROOM_STORAGE=s3://" in said and "Traceback" not in said
    assert [r for r in simulator.requests() if r["vendor"] == vendor] == []


def test_the_seeds_video_engines_are_declared():
    assert {"luma", "runway"} <= set(VIDEO_VENDORS), VIDEO_VENDORS


@pytest.mark.parametrize("vendor", VIDEO_VENDORS)
def test_a_campaign_shooting_on_the_vendor_completes_with_the_clips_its_card_promises_under_faults(
    vendor, flows_on_simulator, s3, tmp_path
):
    from flows.campaign import campaign

    flows_on_simulator.reset(latency_scale=0.01, fault_rate=0.2, faults=["429", "5xx", "reset", "timeout"],
                       timeout_s=0.2, retry_after_s=0.05, seed=28)  # fmt: skip
    # A vendor that makes images too makes the keyframe as well: its image path proven in the same campaign.
    makes_images = Capability.image in declarations.vendor(vendor).adapters
    providers = {"video": [vendor], **({"image": [vendor]} if makes_images else {})}
    brief = parse_brief({**BRIEF, "id": f"clips-{vendor}", "providers": providers})
    manifest = asyncio.run(campaign(brief, f"s3://{s3.bucket}/video-{vendor}"))

    (story,) = manifest.stories
    assert story.status is StoryStatus.complete, story.error
    assert manifest.status == "complete" and story.clips
    assert story.keyframe.provider == (vendor if makes_images else "local")
    card = declarations.vendor(vendor).card(story.clips[0].model, Capability.video)
    for clip in story.clips:
        assert clip.provider == vendor and clip.model == card.model
        assert not card.durations_s or min(abs(clip.duration_s - d) for d in card.durations_s) < 0.6, (
            clip.duration_s, card.durations_s,
        )  # fmt: skip
        assert clip.width < clip.height, (clip.width, clip.height)  # TikTok's 9:16
    # Every clip was paid for once, faults or not.
    paid = [job for job in flows_on_simulator.jobs() if job["vendor"] == vendor]
    assert len(paid) == len(story.clips) + (len(story.candidates) if makes_images else 0)
    assert any(r["fault"] for r in flows_on_simulator.requests())

    # The plan's continuing shot is joined to the one before it, and the manifest says how.
    shots = manifest.plan.stories[0].shots
    continuing = [clip for shot, clip in zip(shots, story.clips, strict=True) if shot.continues_previous]
    assert continuing and all(clip.continuity is not None for clip in continuing)
    for clip in continuing:
        previous = story.clips[story.clips.index(clip) - 1]
        if card.chains:
            assert clip.continuity is Continuity.chained
            asked = [r for r in flows_on_simulator.requests() if r["vendor"] == vendor and r["status"] < 300]
            assert any(previous.job_id in json.dumps(r.get("body")) for r in asked), (
                "no request named the chain"
            )
        else:
            assert clip.continuity is Continuity.last_frame
