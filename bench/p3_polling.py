"""P3: status polls per vendor job and detection lag — Cutroom's waiting against fixed and backoff polling.

Each strategy drives the real adapter (LumaVideo, RunwayVideo) against the simulator in this process, with job
latencies scaled by the latency scale; the baselines' intervals are scaled by the same factor, as the adapters
scale their own schedule. A job's polls are its GETs in the simulator's request log; its detection lag is the
last of them (the one that saw it done) minus its finish in the simulator's job log, as a share of its run.

Cutroom runs as a user would who set CUTROOM_CALLBACK_URL: Luma posts to the receiver in this process and
wait_for looks when a post says a job ended (the URL is handed to the adapter, so the baselines' jobs carry
none). "Cutroom without callback URL" is the same Luma adapter polling on its schedule alone. Runway has no
callbacks: Cutroom reads each running task's progress to time its next look.
"""

from __future__ import annotations

import itertools
import os
import socket
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from bench.harness import Row, p95, ratio
from bench.services import vendor_simulator
from cutroom.assets import AssetKind, AssetSpec, InputRef
from cutroom.channels import Aspect
from providers import callbacks
from providers.callbacks import CallbackNews
from providers.luma import LumaVideo
from providers.polling import run_job
from providers.protocol import JobRef, JobState, JobStatus, Output
from providers.runway import RunwayVideo
from simulator.core import SimConfig

TITLE = "Status polls per vendor job and detection lag"
TARGET = "median ≤ 3 polls/job, p95 lag ≤ 10 % of job time"
MAX_POLLS, MAX_LAG_PCT = 3, 10.0


@dataclass(frozen=True)
class Vendor:
    label: str
    #: The adapter, given where its vendor should call back (None: nowhere).
    adapter: Callable[[str | None], Any]
    spec: Callable[[Path], AssetSpec]
    calls_back: bool = False


def _luma_spec(work: Path) -> AssetSpec:
    return AssetSpec(
        kind=AssetKind.video,
        provider="luma",
        model="ray-2",
        prompt="a lighthouse at dusk, slow push in",
        aspect=Aspect.landscape,
        duration_s=5.0,
    )


def _runway_spec(work: Path) -> AssetSpec:
    keyframe = work / "keyframe.png"
    Image.new("RGB", (320, 180), "#1A2B3C").save(keyframe)
    return AssetSpec(
        kind=AssetKind.video,
        provider="runway",
        model="gen4_turbo",
        prompt="a lighthouse at dusk, slow push in",
        aspect=Aspect.landscape,
        width=1280,
        height=720,
        duration_s=5.0,
        inputs=(InputRef(role="keyframe", uri=keyframe.as_uri(), sha256="bench"),),
    )


#: Each vendor's default video model, as a campaign uses it.
VENDORS = (
    Vendor("luma ray-2", lambda url: LumaVideo("ray-2", callback_url=url), _luma_spec, calls_back=True),
    Vendor("runway gen4_turbo", lambda url: RunwayVideo("gen4_turbo"), _runway_spec),
)
WITHOUT_CALLBACKS = "Cutroom without callback URL"


class _NoDownload:
    """The adapter as run_job sees it, but fetch downloads nothing: detection ends at the poll that saw the
    job done, and a download would make the simulator render every clip while other jobs are being timed."""

    def __init__(self, adapter: Any):
        self.adapter, self.name = adapter, adapter.name

    def submit(self, spec: AssetSpec) -> JobRef:
        return self.adapter.submit(spec)

    def poll(self, job: JobRef) -> JobStatus:
        return self.adapter.poll(job)

    def fetch(self, job: JobRef) -> Output:
        return Output(data=b"", mime="video/mp4")

    @property
    def callback_url(self) -> str | None:
        return getattr(self.adapter, "callback_url", None)

    def callback_news(self, body: Any) -> CallbackNews | None:
        return self.adapter.callback_news(body)


def _cutroom(adapter: Any, spec: AssetSpec, scale: float) -> str:
    """run_job on the adapter's own schedule (already scaled: the adapter reads the simulator's scale), woken
    by the vendor's callbacks when the adapter has a callback URL."""
    output = run_job(_NoDownload(adapter), spec, schedule=adapter.schedule)
    assert output.job_id is not None
    return output.job_id


def _poll_every(adapter: Any, spec: AssetSpec, intervals: Iterable[float]) -> str:
    """Submit, then sleep and poll through the adapter until the job is done."""
    job = adapter.submit(spec)
    for interval in intervals:
        time.sleep(interval)
        status = adapter.poll(job)
        if status.state is JobState.SUCCEEDED:
            return job.job_id
        if status.state.terminal:
            raise RuntimeError(f"{job.job_id} ended {status.state}: {status.error}")
    raise RuntimeError(f"{job.job_id} was still running when the intervals ran out")


def _fixed_5s(adapter: Any, spec: AssetSpec, scale: float) -> str:
    return _poll_every(adapter, spec, itertools.repeat(5.0 * scale))


def _backoff_2_to_10s(adapter: Any, spec: AssetSpec, scale: float) -> str:
    return _poll_every(adapter, spec, (min(2.0 * 2**n, 10.0) * scale for n in itertools.count()))


Strategy = Callable[[Any, AssetSpec, float], str]
BASELINES: dict[str, Strategy] = {"fixed 5 s": _fixed_5s, "2→10 s backoff": _backoff_2_to_10s}


def run(quick: bool) -> list[Row]:
    scale = 0.02 if quick else 0.05
    jobs, workers = (20, 20) if quick else (40, 24)
    with (
        tempfile.TemporaryDirectory(prefix="cutroom-bench-p3-") as tmp,
        vendor_simulator(SimConfig(latency_scale=scale)) as url,
        _callback_receiver() as callback_url,
    ):
        # Every job starts at once: Runway's concurrency queue would otherwise stretch some jobs, not the polling.
        httpx.post(f"{url}/runway/_sim/limits", json={"concurrency": workers}).raise_for_status()
        return [_measure(vendor, url, callback_url, jobs, workers, scale, Path(tmp)) for vendor in VENDORS]


@contextmanager
def _callback_receiver() -> Iterator[str]:
    """A callback URL on a free loopback port, with the receiver bound to loopback only; no callback URL from
    the environment meanwhile, so only the adapter given this one has its vendor call back."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    saved = {name: os.environ.pop(name, None) for name in (callbacks.URL_ENV, callbacks.LISTEN_ENV)}
    os.environ[callbacks.LISTEN_ENV] = f"127.0.0.1:{port}"
    try:
        yield f"http://127.0.0.1:{port}/cutroom/callbacks"
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _measure(
    vendor: Vendor, url: str, callback_url: str, jobs: int, workers: int, scale: float, work: Path
) -> Row:
    polling_only, spec = vendor.adapter(None), vendor.spec(work)
    strategies: dict[str, tuple[Strategy, Any]] = {"Cutroom": (_cutroom, polling_only)}
    if vendor.calls_back:
        strategies["Cutroom"] = (_cutroom, vendor.adapter(callback_url))
        strategies[WITHOUT_CALLBACKS] = (_cutroom, polling_only)
    strategies |= {name: (strategy, polling_only) for name, strategy in BASELINES.items()}
    # Interleaved, so every strategy shares the same load on the machine.
    order = [name for _ in range(jobs) for name in strategies]
    with ThreadPoolExecutor(workers) as pool:
        futures = [
            (name, pool.submit(strategies[name][0], strategies[name][1], spec, scale)) for name in order
        ]
        ids: dict[str, list[str]] = defaultdict(list)
        for name, future in futures:
            ids[name].append(future.result())

    polls: dict[str, list[float]] = defaultdict(list)
    for record in httpx.get(f"{url}/_sim/requests").json():
        if record["method"] == "GET":
            polls[record["path"].split("?")[0].rsplit("/", 1)[-1]].append(record["time"])
    timing = {job["id"]: job for job in httpx.get(f"{url}/_sim/jobs").json()}
    stats = {name: _stats([(polls[i], timing[i]) for i in job_ids], scale) for name, job_ids in ids.items()}

    ours = stats.pop("Cutroom")
    ratios = {}
    for name, theirs in stats.items():
        ratios[f"polls vs {name}"] = ratio(ours["median polls"], theirs["median polls"])
        ratios[f"p95 lag vs {name}"] = ratio(ours["p95 lag %"], theirs["p95 lag %"])
    met = ours["median polls"] <= MAX_POLLS and ours["p95 lag %"] <= MAX_LAG_PCT
    return Row(f"{vendor.label}, latency × {scale:g}", ours, stats, ratios, TARGET, met)


def _stats(jobs: list[tuple[list[float], dict[str, float]]], scale: float) -> dict[str, float]:
    """Polls and lag over jobs, each given as (its GET times, its timing record)."""
    counts = [float(len(gets)) for gets, _ in jobs]
    runs = [t["finished"] - t["created"] for _, t in jobs]
    # A poll can be logged a hair before the finish and still see the job done: that lag is 0.
    lags = [
        100 * max(0.0, max(gets) - t["finished"]) / run for (gets, t), run in zip(jobs, runs, strict=True)
    ]
    return {
        "jobs": len(jobs),
        "median job s": statistics.median(runs) / scale,
        "median polls": statistics.median(counts),
        "p95 polls": p95(counts),
        "median lag %": statistics.median(lags),
        "p95 lag %": p95(lags),
    }
