"""Budgets are kept and vendor caps are never passed: the ledger, the throttles, and whole runs on the simulator."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
import time
from typing import Any

import pytest
import yaml

from cutroom.assets import AssetKind, AssetSpec
from cutroom.capabilities import Capability
from cutroom.ledger import EntryState, Ledger, OverBudget
from cutroom.storage import LocalStorage
from providers import registry
from providers.cards import ModelCard
from providers.declarations import Vendor
from providers.errors import ErrorKind, ProviderError
from providers.limits import Limits, Throttle
from providers.polling import PollSchedule
from providers.protocol import JobRef, JobState, JobStatus, Output
from tests.helpers import BIN, cutroom

BRIEF = {
    "campaign": "Budget Kayaks",
    "brand": {"name": "Osprey", "palette": ["#0D1B2A", "#E0E1DD", "#FF6B35"]},
    "goal": "sell sea kayak tours",
    "audience": "weekend adventurers",
    "channels": ["tiktok", "linkedin"],
    "quality_target": 60,
    "max_iterations": 2,
    "providers": {"image": ["luma"], "video": ["runway"]},
}


def spec(prompt: str) -> AssetSpec:
    return AssetSpec(kind=AssetKind.video, provider="runway", model="gen4_turbo", prompt=prompt)


def test_the_ledger_refuses_a_submit_that_would_pass_the_budget_and_remembers_across_processes(tmp_path):
    storage = LocalStorage(tmp_path)
    ledger = Ledger(storage, "c")
    ledger.reserve(spec("one"), 0.5, budget_usd=1.0, story_id="s1")
    ledger.submitted(spec("one").key(), "job-1")
    with pytest.raises(OverBudget, match=r"needs \$0.60, but \$0.50 of the \$1.00 budget"):
        ledger.reserve(spec("two"), 0.6, budget_usd=1.0, story_id="s2")
    assert ledger.entry(spec("two").key()) is None  # a refused submit leaves no trace to re-attach to

    again = Ledger(storage, "c")  # what a restarted process reads back
    assert again.entry(spec("one").key()).job_id == "job-1"
    assert again.committed_usd() == pytest.approx(0.5)
    again.released(spec("one").key(), "vendor failed the job")
    again.reserve(spec("two"), 0.6, budget_usd=1.0, story_id="s2")  # the release freed the money
    assert Ledger(storage, "c").entry(spec("one").key()).state is EntryState.released


def test_fetching_a_settled_output_again_is_not_paid_twice(tmp_path):
    from cutroom.assets import Asset

    ledger = Ledger(LocalStorage(tmp_path), "c")
    key = spec("one").key()
    ledger.reserve(spec("one"), 0.25, budget_usd=None, story_id="s1")
    ledger.submitted(key, "job-1")
    asset = Asset(
        spec_key=key,
        kind="video",
        provider="runway",
        model="m",
        prompt="one",
        uri="x",
        sha256="0",
        mime="video/mp4",
    )
    ledger.settled(key, 0.25, asset)
    ledger.settled(key, 0.25, asset)
    assert ledger.committed_usd() == pytest.approx(0.25)


def test_a_throttle_spaces_submits_to_its_rate_and_caps_jobs_at_once():
    now = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    throttle = Throttle(Limits(concurrency=2, per_minute=60), clock=lambda: now[0], sleep=sleep)
    for _ in range(25):
        throttle.before_submit()
    # Ten at once (ten seconds' worth), then one a second: 25 submits take 15 s.
    assert now[0] == pytest.approx(15.0)
    with throttle.job(), throttle.job():
        assert not throttle._slots.acquire(blocking=False)  # a third job waits for a slot
    assert throttle._slots.acquire(blocking=False)


def test_a_brief_below_its_estimate_spends_no_more_than_its_budget(simulator, prefect_server, tmp_path):
    simulator.reset(latency_scale=0.02)
    brief = tmp_path / "brief.yaml"
    brief.write_text(yaml.safe_dump({**BRIEF, "budget_usd": 1.5}))  # estimates: $1.24 and $1.04
    result = cutroom(
        "run", str(brief), "--out", str(tmp_path / "out"), env={"CUTROOM_SIMULATOR_URL": simulator.url}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = json.loads((tmp_path / "out/campaigns/budget-kayaks/manifest.json").read_text())
    ledger = manifest["ledger"]
    assert ledger["estimated_usd"] > 2 and 0 < ledger["spent_usd"] <= 1.5
    assert ledger["reserved_usd"] == 0
    left_out = [s["story_id"] for s in manifest["stories"] if s["status"] == "over_budget"]
    assert left_out == ["s02-linkedin-social"] and ledger["over_budget"] == left_out
    assert manifest["status"] == "partial"
    assert f"Left out to keep to the budget: {', '.join(left_out)}" in result.stdout
    # What the vendors were asked to make fits the budget too, at their own prices.
    assert sum(e["paid_usd"] for e in ledger["entries"]) == pytest.approx(ledger["spent_usd"])
    reeled = {story for e in manifest["exports"] for story in e["stories"]}
    assert not reeled & set(left_out)


def test_two_campaigns_at_once_never_run_more_jobs_than_the_providers_cap(
    simulator, prefect_server, tmp_path
):
    simulator.reset(latency_scale=0.04)
    brief = tmp_path / "brief.yaml"
    brief.write_text(yaml.safe_dump({**BRIEF, "channels": ["tiktok"], "budget_usd": 20}))
    env = {
        **os.environ,
        "COLUMNS": "200",
        "CUTROOM_SIMULATOR_URL": simulator.url,
        "CUTROOM_PROVIDER_LIMITS": json.dumps({"runway": {"concurrency": 1}}),
    }
    runs = [
        subprocess.Popen(
            [str(BIN / "cutroom"), "run", str(brief), "--out", str(tmp_path / name), "--campaign-id", name],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in ("first", "second")
    ]
    for run in runs:
        output, _ = run.communicate(timeout=600)
        assert run.returncode == 0, output[-3000:]

    jobs = [j for j in simulator.jobs() if j["vendor"] == "runway"]
    assert len(jobs) == 6  # three clips per campaign
    # At every creation, no other Runway job of either campaign was still running.
    for job in jobs:
        running = [o for o in jobs if o is not job and o["created"] <= job["created"] < o["finished"]]
        assert running == [], f"{job['id']} was created while {len(running)} other job(s) ran"


#: How long a slow output link keeps its first download going while no other job is submitted.
LINK_WAIT_S = 15.0


class SlowLink:
    """A stand-in vendor allowing one job at a time, whose jobs end at their first look but whose output link is
    slow: the first job's first download fails (a 503), and its next lasts until a second job is submitted
    (at most LINK_WAIT_S)."""

    name = "slowlink"
    capability = Capability.image
    schedule = PollSchedule(expected_s=0.0, retry_pause_s=0.05)

    def __init__(self) -> None:
        self.submits: list[str] = []
        self.running: set[str] = set()
        self.most_running = 0
        self.downloads: list[str] = []
        self.second_submitted = threading.Event()
        self.overlapped = False

    def estimate(self, spec: AssetSpec) -> float:
        return 0.1

    def submit(self, spec: AssetSpec) -> JobRef:
        job_id = f"job-{len(self.submits) + 1}"
        self.submits.append(job_id)
        self.running.add(job_id)
        self.most_running = max(self.most_running, len(self.running))
        if len(self.submits) == 2:
            self.second_submitted.set()
        return JobRef(provider=self.name, job_id=job_id, spec_key=spec.key(), spec=spec)

    def poll(self, job: JobRef) -> JobStatus:
        self.running.discard(job.job_id)
        return JobStatus(state=JobState.SUCCEEDED, progress=1.0)

    def fetch(self, job: JobRef) -> Output:
        self.downloads.append(job.job_id)
        if job.job_id == "job-1":
            if self.downloads.count("job-1") == 1:
                raise ProviderError(ErrorKind.generation_failed, "download: HTTP 503", provider=self.name)
            self.overlapped = self.second_submitted.wait(LINK_WAIT_S)
        return Output(data=job.job_id.encode(), mime="image/png", cost_usd=0.1)


def test_a_slow_download_holds_no_vendor_slot_and_a_failed_one_is_tried_again_unpaid(
    prefect_server, tmp_path, request
):
    """With the vendor capped at one job, the second job starts while the first's output is still downloading,
    and the first's failed download is tried again without submitting it again."""
    from prefect.settings import PREFECT_RESULTS_LOCAL_STORAGE_PATH, temporary_settings

    from tasks.generate import generate
    from tasks.limits import ensure_vendor_limits

    vendor = Vendor(
        name="slowlink", title="Slow link", adapters={Capability.image: "tests:SlowLink"},
        limits=Limits(concurrency=1),
        models=(ModelCard(provider="slowlink", model="slow-1", capability=Capability.image),),
    )  # fmt: skip
    registry.register(vendor, {Capability.image: SlowLink})
    request.addfinalizer(lambda: registry.unregister("slowlink"))
    slow = registry.provider(Capability.image, "slowlink")
    specs = [AssetSpec(kind=AssetKind.image, provider="slowlink", model="slow-1", prompt=p) for p in "ab"]

    async def both() -> list[Any]:
        await ensure_vendor_limits({"slowlink"})  # and the cap across processes: one slot on the server
        made = [generate(s, str(tmp_path / "out"), "caps", f"s{n}", run_id="r") for n, s in enumerate(specs)]
        return await asyncio.gather(*made)

    began = time.monotonic()
    with temporary_settings({PREFECT_RESULTS_LOCAL_STORAGE_PATH: str(tmp_path / "results")}):
        first, second = asyncio.run(both())
    assert slow.overlapped, "the second job waited for the first one's download"
    assert time.monotonic() - began < LINK_WAIT_S
    assert slow.most_running == 1  # the cap still held while jobs ran
    assert slow.submits == ["job-1", "job-2"]  # the failed download paid for nothing twice
    assert sorted(slow.downloads) == ["job-1", "job-1", "job-2"]
    assert {first.job_id, second.job_id} == {"job-1", "job-2"}
    ledger = Ledger(LocalStorage(tmp_path / "out"), "caps")
    assert ledger.committed_usd() == pytest.approx(0.2)
