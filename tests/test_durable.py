"""Never pay twice, never lose an asset: `cutroom run` killed with SIGKILL at several points, on S3."""

from __future__ import annotations

import html
import json
import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import boto3
import httpx
import pytest
import yaml

from cutroom.storage import S3Storage, sha256_bytes
from tests.helpers import BIN

BRIEF = {
    "campaign": "Kayak Crash",
    "brand": {"name": "Osprey", "palette": ["#0D1B2A", "#E0E1DD", "#FF6B35"]},
    "goal": "sell sea kayak tours",
    "audience": "weekend adventurers",
    "channels": ["tiktok"],
    "quality_target": 60,
    "max_iterations": 2,
    "budget_usd": 20,
    "providers": {"image": ["luma"], "video": ["runway"]},
}
CREATES = ("/luma/dream-machine/v1/generations/image", "/runway/v1/image_to_video")


class Run:
    """One `cutroom run` process, watched from outside through S3 and the Prefect API."""

    def __init__(self, brief: Path, location: str, env: dict[str, str]):
        self.began = datetime.now(UTC)
        self.proc = subprocess.Popen(
            [str(BIN / "cutroom"), "run", str(brief), "--storage", location],
            env={**os.environ, "COLUMNS": "200", **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def kill_when(self, reached: Callable[[], bool], what: str, timeout_s: float = 240) -> None:
        deadline = time.monotonic() + timeout_s
        while not reached():
            if self.proc.poll() is not None:
                pytest.fail(f"the run ended before {what}:\n{self.proc.stdout.read()[-3000:]}")
            if time.monotonic() > deadline:
                self.proc.kill()
                pytest.fail(f"the run never reached {what}")
            time.sleep(0.05)
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def finish(self) -> str:
        output, _ = self.proc.communicate(timeout=600)
        assert self.proc.returncode == 0, output[-4000:]
        return output


def entries(storage: S3Storage, campaign_id: str) -> list[dict]:
    return [json.loads(storage.read_bytes(k)) for k in storage.keys(f"campaigns/{campaign_id}/ledger")]


def stored(storage: S3Storage, campaign_id: str, folder: str) -> list[str]:
    return [k for k in storage.keys(f"campaigns/{campaign_id}/stories") if f"/{folder}/" in k]


def reel_running_since(since: datetime) -> Callable[[], bool]:
    """Whether a reel is being cut by a run that started after `since` (read from the Prefect API)."""
    api = os.environ["PREFECT_API_URL"]

    def running() -> bool:
        body = {
            "task_runs": {
                "name": {"like_": "reel-"},
                "state": {"type": {"any_": ["RUNNING"]}},
                "start_time": {"after_": since.isoformat()},
            }
        }
        return bool(httpx.post(f"{api}/task_runs/filter", json=body, timeout=5).json())

    return running


def accepted_creates(log: list[dict]) -> list[dict]:
    return [r for r in log if r["method"] == "POST" and r["path"] in CREATES and r["status"] == 200]


@pytest.fixture
def on_vendors(simulator, s3, prefect_server, tmp_path):
    simulator.reset(latency_scale=0.05)
    bucket = boto3.session.Session().client("s3")
    assert bucket.head_bucket(Bucket=s3.bucket)
    env = {
        "CUTROOM_SIMULATOR_URL": simulator.url,
        # Slots a killed run held come back only when their 60 s lease ends; caps above what this brief
        # runs at once keep the reruns from waiting on them.
        "CUTROOM_PROVIDER_LIMITS": json.dumps({"runway": {"concurrency": 8}, "luma": {"concurrency": 8}}),
    }
    return simulator, s3, env


def test_a_run_killed_at_every_stage_resumes_without_paying_twice(on_vendors, tmp_path):
    simulator, s3, env = on_vendors
    brief = tmp_path / "brief.yaml"
    brief.write_text(yaml.safe_dump(BRIEF))

    # The reference: the same brief, never interrupted.
    clean = S3Storage(f"s3://{s3.bucket}/uninterrupted")
    Run(brief, clean.uri("").rstrip("/"), env).finish()
    reference_creates = accepted_creates(simulator.requests())
    reference = json.loads(clean.read_bytes("campaigns/kayak-crash/manifest.json"))

    simulator.reset(latency_scale=0.05)
    storage = S3Storage(f"s3://{s3.bucket}/crashing")
    where = storage.uri("").rstrip("/")
    ledger = lambda: entries(storage, "kayak-crash")  # noqa: E731

    def journaled(entry_wanted: Callable[[dict], bool]) -> Callable[[], bool]:
        # A kill lands once the journal holds the job: between the vendor's answer and that write (one S3
        # PUT) a crash cannot know the job exists, the one window no client of these APIs can close.
        def reached() -> bool:
            now = ledger()
            return any(entry_wanted(e) for e in now) and not any(e["state"] == "reserved" for e in now)

        return reached

    stages = [
        ("just after the first submit", journaled(lambda e: e["state"] == "submitted")),
        (
            "while waiting on a clip",
            journaled(lambda e: e["provider"] == "runway" and e["state"] == "submitted"),
        ),
        (
            "just after a clip was uploaded",
            lambda: bool(stored(storage, "kayak-crash", "videos")) and journaled(lambda e: True)(),
        ),
    ]
    for what, reached in stages:
        Run(brief, where, env).kill_when(reached, what)
    run = Run(brief, where, env)
    run.kill_when(reel_running_since(run.began), "assembly")
    output = Run(brief, where, env).finish()

    manifest = json.loads(storage.read_bytes("campaigns/kayak-crash/manifest.json"))
    assert manifest["status"] == "complete", output
    creates = accepted_creates(simulator.requests())
    bodies = Counter(json.dumps(c["body"], sort_keys=True) for c in creates)
    assert [b for b, n in bodies.items() if n > 1] == [], "a generation was created twice"
    assert len(creates) == len(reference_creates)
    assert manifest["ledger"]["spent_usd"] == pytest.approx(reference["ledger"]["spent_usd"])
    assert manifest["ledger"]["spent_usd"] > 0 and manifest["ledger"]["reserved_usd"] == 0
    assert all(e["state"] == "settled" for e in ledger())
    # Every asset is stored exactly once, and no paid clip was stored that the manifest does not know.
    assets = [a for s in manifest["stories"] for a in [*s["candidates"], *s["clips"], s["voice"]] if a]
    assert all(storage.exists(storage.key_of(a["uri"])) for a in assets)
    clips = {storage.key_of(c["uri"]) for s in manifest["stories"] for c in s["clips"]}
    assert set(stored(storage, "kayak-crash", "videos")) == clips
    assert [e["aspect"] for e in manifest["exports"]] == ["9:16"]
    # The report on S3 links its media with presigned GETs that work without credentials.
    report = storage.read_bytes("campaigns/kayak-crash/index.html").decode()
    links = re.findall(r'src="([^"]+X-Amz-Signature[^"]+)"', report)
    assert links and httpx.get(html.unescape(links[0]), timeout=10).status_code == 200


def test_s3_stopped_mid_run_and_started_again_leaves_no_partial_object(on_vendors, tmp_path):
    simulator, s3, env = on_vendors
    brief = tmp_path / "brief.yaml"
    brief.write_text(yaml.safe_dump({**BRIEF, "id": "s3-restart"}))
    storage = S3Storage(f"s3://{s3.bucket}/restarting")
    run = Run(brief, storage.uri("").rstrip("/"), env)
    deadline = time.monotonic() + 240
    while not any(e["provider"] == "runway" for e in entries(storage, "s3-restart")):
        assert run.proc.poll() is None and time.monotonic() < deadline, "the run ended before its clips"
        time.sleep(0.05)
    s3.stop()  # clips are being made, stored and journaled: every write now meets a dead endpoint
    time.sleep(3)
    s3.start()
    output = run.finish()

    manifest = json.loads(storage.read_bytes("campaigns/s3-restart/manifest.json"))
    assert manifest["status"] == "complete", output
    keys = storage.keys("campaigns/s3-restart")
    assert len(keys) > 10
    for key in keys:  # every object is whole: its bytes hash to the sha256 recorded when it was put
        head = storage.client.head_object(Bucket=storage.bucket, Key=storage.object_key(key))
        assert head["Metadata"]["sha256"] == sha256_bytes(storage.read_bytes(key)), key
