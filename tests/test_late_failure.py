"""A failure that can only happen late — the reel, after every story is paid for — loses nothing: the manifest and
report name the reel that failed and why, the run ends `partial` with exit 1 and no traceback, and the rerun
pays for nothing again."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from PIL import Image

from cutroom.brief import load_brief, parse_brief
from cutroom.capabilities import Capability
from cutroom.ledger import LedgerSummary
from cutroom.manifest import CampaignStatus, FailedReel, Manifest, StoryResult, StoryStatus
from cutroom.report import render_report
from providers import registry
from tests.helpers import cutroom
from tests.test_durable import BRIEF, Run, accepted_creates

CLIP_CREATE = "/runway/v1/image_to_video"


def clip_count(brief: Path) -> int:
    """How many clips the plan shoots: the local planner is the one the run uses, and it is deterministic."""
    plan = registry.provider(Capability.planner, "local").plan(load_brief(brief))
    return sum(len(story.shots) for story in plan.stories)


def test_a_logo_broken_after_the_brief_was_checked_fails_the_reel_only_and_the_rerun_pays_nothing(
    simulator, prefect_server, tmp_path
):
    simulator.reset(latency_scale=0.05)
    logo = tmp_path / "logo.png"
    Image.new("RGBA", (240, 120), (255, 107, 53, 255)).save(logo)
    good_logo = logo.read_bytes()
    brief = tmp_path / "brief.yaml"
    brief.write_text(
        yaml.safe_dump({**BRIEF, "id": "late-failure", "brand": {**BRIEF["brand"], "logo": "logo.png"}})
    )
    out = tmp_path / "out"
    env = {"CUTROOM_SIMULATOR_URL": simulator.url, "CUTROOM_GLOBAL_LIMITS": "false"}
    clips = clip_count(brief)

    # The brief (and its logo) passed validation and the vendors are working. Once the last clip is asked for,
    # every request naming the logo's hash has been made; the logo is then overwritten, as a design tool saving
    # over it or a sync client leaving an error page in its place would, long before the reel reads it.
    run = Run(brief, str(out), env)
    deadline = time.monotonic() + 240
    while sum(r["path"] == CLIP_CREATE for r in accepted_creates(simulator.requests())) < clips:
        assert run.proc.poll() is None, run.proc.stdout.read()[-3000:]
        assert time.monotonic() < deadline, "the run never asked for its last clip"
        time.sleep(0.02)
    logo.write_bytes(b"<html><body>502 Bad Gateway</body></html>\n")
    output, _ = run.proc.communicate(timeout=300)

    assert run.proc.returncode == 1, output[-4000:]
    assert "Traceback" not in output and "ERROR" not in output, output[-4000:]
    assert "reel tiktok 9:16 failed: the brand logo" in " ".join(output.split()), output[-4000:]
    campaign = out / "campaigns" / "late-failure"
    manifest = json.loads((campaign / "manifest.json").read_text())
    assert manifest["status"] == "partial"
    assert manifest["exports"] == []
    (failed,) = manifest["failed_reels"]
    assert (failed["channel"], failed["aspect"]) == ("tiktok", "9:16")
    assert failed["stories"] == [s["story_id"] for s in manifest["stories"]]
    assert "the brand logo" in failed["error"] and "not a readable image" in failed["error"]
    assert all(s["status"] == "complete" and len(s["clips"]) == clips for s in manifest["stories"])
    report = (campaign / "index.html").read_text()
    assert "reel failed" in report and "not a readable image" in report
    assert manifest["ledger"]["spent_usd"] > 0
    first_creates = accepted_creates(simulator.requests())

    # The user puts the logo back and runs the same command: every asset is reused, the reel is cut.
    logo.write_bytes(good_logo)
    again = cutroom("run", str(brief), "--out", str(out), env=env)
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-4000:]
    assert accepted_creates(simulator.requests()) == first_creates, "the rerun paid for a new generation"
    rerun = json.loads((campaign / "manifest.json").read_text())
    assert rerun["status"] == "complete" and rerun["failed_reels"] == []
    assert [(e["channel"], e["aspect"]) for e in rerun["exports"]] == [("tiktok", "9:16")]
    assert rerun["reused_assets"] == sum(
        len(s["candidates"]) + len(s["clips"]) + bool(s["voice"]) for s in rerun["stories"]
    )
    assert rerun["ledger"]["spent_usd"] == pytest.approx(manifest["ledger"]["spent_usd"])
    assert (campaign / "exports").is_dir() and any((campaign / "exports").iterdir())
    assert "reel failed" not in (campaign / "index.html").read_text()


def test_the_report_names_a_failed_reel_and_escapes_its_error():
    brief = parse_brief({**BRIEF, "id": "late-report"})
    plan = registry.provider(Capability.planner, "local").plan(brief)
    story = plan.stories[0]
    manifest = Manifest(
        campaign=brief.campaign,
        campaign_id=brief.campaign_id,
        status=CampaignStatus.partial,
        brief=brief,
        plan=plan,
        stories=[StoryResult(story_id=story.id, status=StoryStatus.complete)],
        failed_reels=[
            FailedReel(channel="tiktok", aspect="9:16", stories=[story.id], error="<b>ffmpeg</b> said no")
        ],
        ledger=LedgerSummary(budget_usd=20, estimated_usd=1, spent_usd=1),
    )
    page = "".join(render_report(manifest, lambda uri: uri))
    assert "TikTok · 9:16 reel failed" in page and "&lt;b&gt;ffmpeg&lt;/b&gt; said no" in page
    assert f"{story.title}" in page.split("reel failed", 1)[1]
    assert 'href="#reel-tiktok-' in page and "No reels were assembled" not in page
