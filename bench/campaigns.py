"""The campaign the orchestration benchmarks run, and how they run Cutroom on it as a user would.

N email stories: each is a Luma keyframe, a Runway clip, a local voice-over and a score (≈ 4 jobs). Email keeps
the one reel at 30 s whatever N is, so the reel is a constant, small share of the work at every scale (P5
measures assembly itself). The simulator serves stock media: a vendor renders on its own GPUs, not our CPUs.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.harness import Timing
from bench.services import vendor_simulator
from providers.registry import DEFAULT_LIMITS
from simulator.core import SimConfig

ROOT = Path(__file__).resolve().parent.parent
CUTROOM = [str(Path(sys.executable).with_name("cutroom"))]


def brief(stories: int, campaign_id: str) -> dict[str, Any]:
    return {
        "campaign": f"Bench {stories} stories",
        "id": campaign_id,
        "brand": {"name": "Harbour Cafe", "voice": "cosy, friendly", "palette": ["#3E2723", "#FFB300"]},
        "goal": "book a table for the new winter menu",
        "audience": "neighbours and weekend visitors",
        "channels": ["email"],
        "stories": stories,
        "budget_usd": 10_000,
        "quality_target": 0,
        "max_iterations": 1,
        "providers": {"image": ["luma"], "video": ["runway"]},
    }


def write_brief(folder: Path, stories: int, campaign_id: str) -> Path:
    path = folder / f"{campaign_id}.json"
    path.write_text(json.dumps(brief(stories, campaign_id)))
    return path


def simulator_config(latency_scale: float, seed: int = 5) -> SimConfig:
    return SimConfig(latency_scale=latency_scale, stock_media=True, seed=seed)


@contextmanager
def bench_world(name: str, latency_scale: float) -> Iterator[tuple[Path, str]]:
    """A scratch folder and the simulator at this latency scale, set to Cutroom's vendor caps: (folder, URL)."""
    with (
        tempfile.TemporaryDirectory(prefix=f"cutroom-bench-{name}-") as tmp,
        vendor_simulator(simulator_config(latency_scale)) as url,
    ):
        match_vendor_caps(url)
        yield Path(tmp), url


def caps() -> dict[str, int]:
    """Jobs each vendor runs at once: Cutroom's defaults, which the simulator is set to match."""
    return {name: int(DEFAULT_LIMITS[name].concurrency or 1) for name in ("luma", "runway")}


def match_vendor_caps(simulator_url: str) -> None:
    """Runway's own concurrency slots in the simulator, set to the cap Cutroom keeps (its tier-1 limit)."""
    httpx.post(
        f"{simulator_url}/runway/_sim/limits",
        json={"concurrency": caps()["runway"], "daily_generations": None, "credit_balance": 10_000_000},
    ).raise_for_status()


def environment(prefect_home: Path, **extra: str) -> dict[str, str]:
    """A child's environment: the simulator (inherited), its own Prefect database, no vendor keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "LUMAAI_", "RUNWAYML_"))}
    env.update(
        PREFECT_HOME=str(prefect_home),
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="90",
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


@dataclass
class Finished:
    """A child process run to its end: wall, CPU of it and every descendant it waited for, peak RSS."""

    timing: Timing
    peak_rss_mib: float
    returncode: int
    started: float
    ended: float


def run_child(args: list[str], env: dict[str, str], log: Path) -> Finished:
    """Run a command to its end, alone in its process group; its CPU counts its waited-for descendants."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    with log.open("wb") as sink:
        process = subprocess.Popen(args, env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT)
        _, status, usage = os.wait4(process.pid, 0)
    ended = time.time()
    process.returncode = os.waitstatus_to_exitcode(status)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(getattr(after, f) - getattr(before, f) for f in ("ru_utime", "ru_stime"))
    return Finished(
        timing=Timing(wall_s=ended - started, cpu_s=cpu),
        peak_rss_mib=usage.ru_maxrss / 1024,
        returncode=process.returncode,
        started=started,
        ended=ended,
    )


@contextmanager
def running(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A command started in its own process group; whatever is left of the group is killed at the end."""
    with log.open("wb") as sink:
        process = subprocess.Popen(
            args, env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True
        )
        try:
            yield process
        finally:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def check(finished: Finished, what: str, log: Path) -> Finished:
    """The finished run, or an error that carries the end of its log (the scratch folder goes with the run)."""
    if finished.returncode:
        tail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{what} exited {finished.returncode}; the end of its log:\n{tail}")
    return finished


def cutroom_run(brief_path: Path, out: Path) -> list[str]:
    return [*CUTROOM, "run", str(brief_path), "--out", str(out)]
