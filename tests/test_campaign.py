"""A whole small campaign through a real Prefect server, as `make demo` runs it, and again to resume."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml
from PIL import Image

from cutroom.assembly import reel_duration
from cutroom.channels import SIZES, Aspect
from cutroom.media import ffmpeg_exe, probe
from cutroom.settings import Settings
from cutroom.storage import path_of, sha256_file
from tests.helpers import cutroom

#: Tests of this file run on one worker: its module fixtures are costly: one worker builds them once.
pytestmark = pytest.mark.xdist_group("campaign")

BRIEF = {
    "campaign": "Fern Spring",
    "brand": {"name": "Fern", "voice": "fresh, calm", "palette": ["#1B4332", "#F2E8CF", "#BC4749"]},
    "goal": "sell the spring collection of indoor plants",
    "audience": "city flat dwellers",
    "channels": ["tiktok", "linkedin", "youtube"],
    "quality_target": 80,
    "max_iterations": 3,
}


def decodes_cleanly(path: Path) -> bool:
    proc = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "null", "-"], capture_output=True, text=True
    )
    return proc.returncode == 0 and not proc.stderr.strip()


def snapshot(folder: Path) -> dict[str, float]:
    return {
        str(p.relative_to(folder)): p.stat().st_mtime
        for p in folder.rglob("*")
        if p.is_file() and ".cutroom" not in p.parts
    }


@pytest.fixture(scope="module")
def first_run(prefect_server, tmp_path_factory):
    work = tmp_path_factory.mktemp("campaign")
    brief = work / "brief.yaml"
    brief.write_text(yaml.safe_dump(BRIEF))
    result = cutroom("run", str(brief), "--out", str(work / "out"))
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = json.loads((work / "out" / "campaigns" / "fern-spring" / "manifest.json").read_text())
    return work, result, manifest


def test_campaign_completes_with_manifest_and_report(first_run):
    work, result, manifest = first_run
    assert manifest["status"] == "complete"
    assert [s["status"] for s in manifest["stories"]] == ["complete"] * 3
    campaign = work / "out" / "campaigns" / "fern-spring"
    assert (campaign / "index.html").is_file()
    assert str(campaign / "index.html") in result.stdout.replace("\n", "")
    assert manifest["ledger"] == {
        "budget_usd": 50.0,
        "estimated_usd": 0.0,
        "spent_usd": 0.0,
        "reserved_usd": 0.0,
        "over_budget": [],
        "entries": [],  # local providers are free: nothing to journal
    }


def test_every_asset_is_stored_once_under_its_hash(first_run):
    _, _, manifest = first_run
    for story in manifest["stories"]:
        assets = [*story["candidates"], *story["clips"], story["voice"]]
        for asset in assets:
            path = path_of(asset["uri"])
            assert path.is_file() and sha256_file(path) == asset["sha256"] and asset["sha256"] in path.name
            assert asset["score"]["total"] > 0 and asset["score"]["criteria"]
        assert f"/stories/{story['story_id']}/" in story["keyframe"]["uri"]
        record = path_of(story["keyframe"]["uri"]).parent.parent / "metadata" / "story.json"
        assert json.loads(record.read_text())["status"] == story["status"]


def test_images_have_the_planned_sizes(first_run):
    _, _, manifest = first_run
    shapes = {"tiktok": Aspect.vertical, "linkedin": Aspect.square, "youtube": Aspect.landscape}
    for planned, result in zip(manifest["plan"]["stories"], manifest["stories"], strict=True):
        for candidate in result["candidates"]:
            with Image.open(path_of(candidate["uri"])) as image:
                assert image.size == SIZES[shapes[planned["channel"]]]


def test_one_valid_reel_per_requested_format_with_the_planned_duration(first_run):
    _, _, manifest = first_run
    config = Settings()
    shots = {s["id"]: [shot["duration_s"] for shot in s["shots"]] for s in manifest["plan"]["stories"]}
    reels = {(e["channel"], e["aspect"]): e for e in manifest["exports"]}
    assert set(reels) == {("tiktok", "9:16"), ("linkedin", "1:1"), ("youtube", "16:9")}
    for export in reels.values():
        path = path_of(export["uri"])
        assert path.name == f"{export['channel']}-{export['aspect'].replace(':', 'x')}.mp4"
        assert decodes_cleanly(path)
        info = probe(path)
        assert (info.width, info.height) == SIZES[Aspect(export["aspect"])]
        assert info.has_audio
        planned = reel_duration(
            [d for sid in export["stories"] for d in shots[sid]], config.crossfade_s, config.end_card_s
        )
        assert abs(info.duration_s - planned) <= 0.1 * planned


def test_a_second_run_generates_nothing_new(first_run):
    work, _, manifest = first_run
    out = work / "out"
    before = snapshot(out)
    result = cutroom("run", str(work / "brief.yaml"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    again = json.loads((out / "campaigns" / "fern-spring" / "manifest.json").read_text())
    total = sum(len(s["candidates"]) + len(s["clips"]) + 1 for s in manifest["stories"])
    assert again["reused_assets"] == total
    assert f"Reused {total} of {total} assets from earlier runs — nothing new was generated." in result.stdout
    after = snapshot(out)
    changed = {k for k in after if after[k] != before.get(k)}
    assert changed <= {"campaigns/fern-spring/manifest.json", "campaigns/fern-spring/index.html"}


def test_a_deleted_asset_is_made_again_and_nothing_else(first_run):
    work, _, manifest = first_run
    clip = manifest["stories"][0]["clips"][-1]
    path_of(clip["uri"]).unlink()
    result = cutroom("run", str(work / "brief.yaml"), "--out", str(work / "out"))
    assert result.returncode == 0, result.stderr
    assert sha256_file(path_of(clip["uri"])) == clip["sha256"]
    total = sum(len(s["candidates"]) + len(s["clips"]) + 1 for s in manifest["stories"])
    assert f"Reused {total - 1} of {total} assets from earlier runs; generated 1 new." in result.stdout


def test_the_report_renders_in_a_real_browser_without_errors(first_run, tmp_path):
    from browser import Chromium

    work, _, manifest = first_run
    report = work / "out" / "campaigns" / "fern-spring" / "index.html"
    with Chromium() as browser, browser.page(report) as page:
        assert page.problems == []
        text = page.evaluate("document.body.innerText")
        sources = page.evaluate(
            "[...document.querySelectorAll('video, audio, img')].map(m => m.getAttribute('src'))"
        )
        reels_ok = page.evaluate(
            "[...document.querySelectorAll('video[preload=metadata]')].map(v => v.readyState >= 1 && !v.error)"
        )
        page.screenshot(tmp_path / "report.png")
    assert reels_ok == [True] * len(manifest["exports"])
    assert "Fern Spring" in text and "complete" in text.lower()
    for story in manifest["stories"]:
        assert story["candidates"][0]["prompt"] in text
    made = len(manifest["exports"]) + sum(
        len(s["candidates"]) + len(s["clips"]) + 1 for s in manifest["stories"]
    )
    assert len(sources) == made
    assert all((report.parent / unquote(src)).is_file() for src in sources)


def test_prefect_shows_summary_asset_table_prd_and_finished_progress(first_run):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    _, _, manifest = first_run
    keys = ["fern-spring-summary", "fern-spring-assets", "fern-spring-progress", "fern-spring-prd"]
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys)))
    latest = {a.key: a for a in sorted(found, key=lambda a: a.created)}
    assert set(latest) == set(keys)
    assert latest["fern-spring-summary"].type == "markdown"
    assert "# Fern Spring: complete" in latest["fern-spring-summary"].data
    assert "3 of 3 stories complete" in latest["fern-spring-summary"].data
    assert (
        latest["fern-spring-prd"].type == "markdown"
        and "# Fern Spring: campaign PRD" in latest["fern-spring-prd"].data
    )
    assert "## KPIs" in latest["fern-spring-prd"].data
    rows = json.loads(latest["fern-spring-assets"].data)
    assert len(rows) == sum(len(s["candidates"]) + len(s["clips"]) + 1 for s in manifest["stories"])
    assert (
        latest["fern-spring-progress"].type == "progress"
        and float(latest["fern-spring-progress"].data) == 100.0
    )
