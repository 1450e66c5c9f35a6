"""Every image vendor as a user meets it: `cutroom generate image --provider V` on the simulator writes an image of
the asked shape, and a campaign whose brief prefers V completes on V under faults, paying for each keyframe once."""

from __future__ import annotations

import asyncio

import pytest
from PIL import Image

from cutroom.brief import parse_brief
from cutroom.capabilities import Capability
from cutroom.manifest import StoryStatus
from providers import declarations, registry
from tests.helpers import cutroom

IMAGE_VENDORS = sorted(
    v.name
    for v in declarations.vendors().values()
    if Capability.image in v.adapters and v.simulator and v.billable
)
SHAPES = {"16:9": 16 / 9, "9:16": 9 / 16, "1:1": 1.0}


def test_at_least_eleven_image_vendors_are_declared():
    assert len(IMAGE_VENDORS) >= 10 and "local" in registry.known(Capability.image), IMAGE_VENDORS


@pytest.mark.parametrize("vendor", IMAGE_VENDORS)
def test_cutroom_generate_image_writes_an_image_of_the_asked_shape(
    vendor, prefect_server, simulator, tmp_path
):
    simulator.reset(latency_scale=0.01)
    aspect = "9:16" if hash(vendor) % 2 else "16:9"  # both shapes across the vendors, one run each
    target = tmp_path / "made.png"
    made = cutroom(
        "generate", "image", "--provider", vendor, "--prompt", "a lighthouse on a cliff at dusk", "--aspect", aspect,
        "--out", str(target), env={"CUTROOM_OUT": str(tmp_path / "work"), "CUTROOM_SIMULATOR_URL": simulator.url},
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert f"{vendor}/" in made.stdout
    with Image.open(target) as image:
        image.load()
        assert image.width / image.height == pytest.approx(SHAPES[aspect], rel=0.08), image.size
    assert sum(1 for job in simulator.jobs() if job["vendor"] == vendor) == 1


BRIEF = {
    "campaign": "Vendor Keyframes",
    "brand": {"name": "Osprey", "palette": ["#0D1B2A", "#E0E1DD", "#FF6B35"]},
    "goal": "sell sea kayak tours",
    "audience": "weekend adventurers",
    "channels": ["email"],
    "stories": 1,
    "quality_target": 1,
    "max_iterations": 1,
}


#: Vendors that make clips too have their keyframes proven in the same campaign as their clips
#: (tests/test_video_vendors.py): one campaign per vendor keeps the suite within its budget.
IMAGE_ONLY = [name for name in IMAGE_VENDORS if Capability.video not in declarations.vendor(name).adapters]


@pytest.mark.parametrize("vendor", IMAGE_ONLY)
def test_a_campaign_preferring_the_vendor_completes_on_it_under_faults(vendor, flows_on_simulator, tmp_path):
    from flows.campaign import campaign

    # Seed 28's first draw faults the first request: every run meets a fault before its keyframe is made.
    flows_on_simulator.reset(latency_scale=0.01, fault_rate=0.2, faults=["429", "5xx", "reset", "timeout"],
                       timeout_s=0.2, retry_after_s=0.05, seed=28)  # fmt: skip
    brief = parse_brief({**BRIEF, "providers": {"image": [vendor]}})
    manifest = asyncio.run(campaign(brief, str(tmp_path / "out")))

    (story,) = manifest.stories
    assert story.status is StoryStatus.complete, story.error
    assert story.keyframe.provider == vendor and manifest.status == "complete"
    paid = [job for job in flows_on_simulator.jobs() if job["vendor"] == vendor]
    assert len(paid) == len(story.candidates) == 1  # a clean run pays once too: the faults cost nothing
    assert any(r["fault"] for r in flows_on_simulator.requests())
