"""The campaign the orchestration benchmarks run, and how they run Cutroom on it as a user would.

N email stories: each is a Luma keyframe, a Runway clip, a local voice-over and a score (≈ 4 jobs). Email keeps
the one reel at 30 s whatever N is, so the reel is a constant, small share of the work at every scale (P5
measures assembly itself). The simulator serves stock media: a vendor renders on its own GPUs, not our CPUs.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from bench.harness import Timing
from bench.services import vendor_simulator
from cli.embedded_server import APP as EMBEDDED_APP
from cli.prefect_setup import PREFECT_DEFAULTS
from providers import registry
from simulator.core import SimConfig

ROOT = Path(__file__).resolve().parent.parent
CUTROOM = [str(Path(sys.executable).with_name("cutroom"))]
PLAIN = [sys.executable, "-m", "bench.plain"]
#: The latency scale of the campaigns P1, P2 and P4 share: Runway's gen4_turbo runs ≈ 30 s for real, here ≈ 1.5 s,
#: still 10× a poll round trip.
LATENCY_SCALE = 0.05
FINAL = ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def campaign_size(quick: bool) -> int:
    """Stories in the campaign P1, P2 and P4 share: the 50 P1's target names, 4 for a quick look."""
    return 4 if quick else 50


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
    """Jobs each vendor runs at once: the caps Cutroom keeps (its declarations'), which the simulator is set to
    match."""
    return {name: int(registry.limits(name).concurrency or 1) for name in ("luma", "runway")}


def match_vendor_caps(simulator_url: str) -> None:
    """Runway's own concurrency slots in the simulator, set to the cap Cutroom keeps (its tier-1 limit)."""
    httpx.post(
        f"{simulator_url}/runway/_sim/limits",
        json={"concurrency": caps()["runway"], "daily_generations": None, "credit_balance": 10_000_000},
    ).raise_for_status()


def prefect_home(folder: Path) -> Path:
    """A Prefect home in the folder whose database is already made, as on every run of a user's but the first.

    Made once per bench process (one trivial flow on the embedded server: migrations, block types) and copied,
    so each benchmark keeps its own run history without paying Prefect's first start (≈ 10 s) again.
    """
    home = folder / "prefect"
    shutil.copytree(_prefect_template(), home)
    return home


@functools.cache
def _prefect_template() -> Path:
    home = Path(tempfile.mkdtemp(prefix="cutroom-bench-prefect-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-c", "from prefect import flow; flow(name='bench-warm-up')(lambda: None)()"],
        env=environment(home),
        check=True,
        capture_output=True,
    )
    return home


def environment(prefect_home: Path, **extra: str) -> dict[str, str]:
    """A child's environment: the simulator (inherited), its own Prefect database, no vendor keys, and Prefect
    configured as `cutroom run` configures itself and its embedded server (the Prefect floor is not a CLI run)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "LUMAAI_", "RUNWAYML_"))}
    env.update(PREFECT_DEFAULTS, PREFECT_HOME=str(prefect_home), PYTHONPATH=str(ROOT), **extra)
    return env


@dataclass
class Finished:
    """A child process run to its end: wall, CPU of it and every descendant it waited for, peak RSS, and the
    CPU of its embedded Prefect server alone."""

    timing: Timing
    peak_rss_mib: float
    returncode: int
    started: float
    ended: float
    #: As last seen, up to SAMPLE_EVERY_S before the server exited; 0 if the child started none.
    prefect_server_cpu_s: float = 0.0
    #: What made up the peak: MiB by role (see `role`).
    peak_parts: dict[str, float] = field(default_factory=dict)
    #: The largest any one process of each role held at any sample, MiB.
    largest_by_role: dict[str, float] = field(default_factory=dict)


#: How often a child's process tree is weighed.
SAMPLE_EVERY_S = 0.25


def run_child(args: list[str], env: dict[str, str], log: Path) -> Finished:
    """Run a command to its end; its CPU counts its waited-for descendants, its peak RSS is that of its whole
    process tree at once (the CLI and its embedded Prefect server), sampled every SAMPLE_EVERY_S.

    Not `ru_maxrss`: a child spawned by vfork (as subprocess does) inherits the high-water mark of the bench
    process itself at exec, so every child looked as big as the bench had grown (P7 read 789 MiB at 10, 100
    and 1000 stories alike after P1-P6 had run in the same process).
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    peak, parts, server_cpu, done = 0, Counter(), 0.0, threading.Event()
    largest: dict[str, float] = {}

    def weigh() -> None:
        nonlocal peak, parts, server_cpu
        while not done.wait(SAMPLE_EVERY_S):
            tree = process_tree(process.pid)
            for p in tree.values():
                part = role(p.command)
                largest[part] = max(largest.get(part, 0.0), p.rss / 2**20)
            if (held := sum(p.rss for p in tree.values())) > peak:
                peak, parts = held, Counter()
                for p in tree.values():
                    parts[role(p.command)] += p.rss / 2**20
            # The embedded Prefect server `cutroom run` starts shows its app factory in its command line.
            server_cpu = max([server_cpu, *(p.cpu_s for p in tree.values() if EMBEDDED_APP in p.command)])

    with log.open("wb") as sink:
        process = subprocess.Popen(args, env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT)
        scale = threading.Thread(target=weigh, name="rss", daemon=True)
        scale.start()
        _, status = os.waitpid(process.pid, 0)
        ended = time.time()
        done.set()
        scale.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(getattr(after, f) - getattr(before, f) for f in ("ru_utime", "ru_stime"))
    return Finished(
        timing=Timing(wall_s=ended - started, cpu_s=cpu),
        peak_rss_mib=peak / 2**20,
        returncode=process.returncode,
        started=started,
        ended=ended,
        prefect_server_cpu_s=server_cpu,
        peak_parts=parts,
        largest_by_role=largest,
    )


def role(command: str) -> str:
    """What a process of a `cutroom` command tree is: its embedded Prefect server, an ffmpeg, or the command."""
    if EMBEDDED_APP in command:
        return "Prefect server"
    return "ffmpeg" if "ffmpeg" in command.split(" ", 1)[0] else "cutroom"


@dataclass
class Process:
    """One process now: bytes resident, CPU spent so far, its command line, its parent's PID."""

    rss: int
    cpu_s: float
    command: str
    parent: int


def process_tree(root: int) -> dict[int, Process]:
    """A process and all its descendants now, by PID (Linux /proc)."""
    stats: dict[int, list[str]] = {}  # /proc/PID/stat after the command name: state, parent, …
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, ValueError, IndexError):
            pid, fields = int(stat.parent.name), stat.read_text().rsplit(")", 1)[1].split()
            stats[pid], parents[pid] = fields, int(fields[1])
    tree, frontier = {root}, [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier and pid not in tree]
        tree.update(children)
        frontier = children
    found = {}
    for pid in tree:
        with suppress(OSError, ValueError, IndexError, KeyError):
            fields = stats[pid]
            found[pid] = Process(
                rss=int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * resource.getpagesize(),
                cpu_s=(int(fields[11]) + int(fields[12])) / CLOCK_TICKS,
                command=Path(f"/proc/{pid}/cmdline")
                .read_bytes()
                .replace(b"\0", b" ")
                .decode(errors="replace"),
                parent=parents[pid],
            )
    # A child between its vfork and its exec shares its parent's memory, and /proc shows it with the parent's
    # command and RSS: counted, a Python process spawning ffmpeg often would weigh double at random samples.
    for pid, process in found.items():
        if (parent := found.get(process.parent)) and process.command == parent.command:
            found[pid] = replace(process, rss=0)
    return found


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


def assets(out: Path, campaign_id: str) -> int:
    """Assets a campaign made: keyframe candidates, clips and voice-overs."""
    manifest = json.loads((out / "campaigns" / campaign_id / "manifest.json").read_text())
    return sum(
        len(s["candidates"]) + len(s["clips"]) + (1 if s.get("voice") else 0) for s in manifest["stories"]
    )


def history(database: Path, flow_name: str = "campaign") -> dict[str, float]:
    """The last campaign's runs in Prefect's database: how many, and how many are not final."""
    with sqlite3.connect(database) as db:
        (root,) = db.execute(
            "SELECT fr.id FROM flow_run fr JOIN flow f ON f.id = fr.flow_id WHERE f.name = ? "
            "ORDER BY fr.created DESC LIMIT 1",
            (flow_name,),
        ).fetchone()
        flows = [root, *(r[0] for r in db.execute(
            "SELECT fr.id FROM flow_run fr JOIN task_run tr ON tr.id = fr.parent_task_run_id "
            "WHERE tr.flow_run_id = ?", (root,),
        ))]  # fmt: skip
        marks = ",".join("?" * len(flows))
        tasks = db.execute(
            f"SELECT state_type FROM task_run WHERE flow_run_id IN ({marks})", flows
        ).fetchall()
        states = db.execute(f"SELECT state_type FROM flow_run WHERE id IN ({marks})", flows).fetchall()
    return {
        "flow runs": len(flows),
        "task runs": len(tasks),
        "not final": sum(1 for (s,) in [*tasks, *states] if s not in FINAL),
    }


#: The ways of making the bench campaign P1, P2 and P4 compare: the command, and what its environment adds.
WAYS: dict[str, tuple[Callable[[Path, Path], list[str]], dict[str, str]]] = {
    "Cutroom": (cutroom_run, {}),
    "plain asyncio": (lambda brief, out: [*PLAIN, str(brief), str(out)], {}),
    "sequential loop": (lambda brief, out: [*PLAIN, str(brief), str(out), "--sequential"], {}),
    "Prefect floor": (
        lambda brief, out: [sys.executable, "-m", "bench.prefect_floor", str(brief), str(out)],
        {},
    ),
    # What cross-process vendor caps cost: two API round trips on every job's critical path.
    "Cutroom with global limits": (cutroom_run, {"CUTROOM_GLOBAL_LIMITS": "true"}),
}


@dataclass
class Made:
    """One way of making the bench campaign, run to its end: the process, what the simulator saw meanwhile,
    and for Cutroom the assets its manifest lists and Prefect's record of its runs."""

    finished: Finished
    #: Where it wrote the campaign, whose id is the folder's name.
    out: Path
    requests: list[dict[str, Any]]
    jobs: list[dict[str, Any]]
    assets: int | None
    history: dict[str, float] | None


@functools.cache
def made(way: str, stories: int) -> Made:
    """The bench campaign of this many stories made this way, once per bench process: P1, P2 and P4 read the
    same runs, in one world (shared_world)."""
    work, url = shared_world()
    command, extra = WAYS[way]
    slug = f"{'-'.join(way.split()[:2]).lower()}-{stories}"
    log = work / f"{slug}.log"
    env = shared_environment(**extra)
    done = check(run_child(command(write_brief(work, stories, slug), work / slug), env, log), way, log)
    cutroom = way.startswith("Cutroom")  # the others write no manifest, and keep no run history of ours
    requests, jobs = vendor_log(url, done)
    return Made(
        finished=done,
        out=work / slug,
        requests=requests,
        jobs=jobs,
        assets=assets(work / slug, slug) if cutroom else None,
        history=history(work / "prefect" / "prefect.db") if cutroom else None,
    )


def vendor_log(url: str, run: Finished) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The requests the simulator saw and the jobs it began while the run ran: (requests, jobs)."""
    with httpx.Client(base_url=url, timeout=30) as http:
        requests, jobs = http.get("/_sim/requests").json(), http.get("/_sim/jobs").json()
    return (
        [r for r in requests if run.started <= r["time"] <= run.ended],
        [j for j in jobs if run.started <= j["created"] <= run.ended],
    )


@functools.cache
def shared_world() -> tuple[Path, str]:
    """One scratch folder with a Prefect home, and the simulator at LATENCY_SCALE set to Cutroom's vendor caps,
    for the whole bench process: (folder, simulator URL)."""
    world = ExitStack()
    atexit.register(world.close)
    work, url = world.enter_context(bench_world("shared", LATENCY_SCALE))
    prefect_home(work)
    return work, url


def shared_environment(**extra: str) -> dict[str, str]:
    """A child's environment in the shared world; vendor rate caps scaled like the latencies, so the caps that
    bind are the concurrency ones."""
    return environment(
        shared_world()[0] / "prefect",
        CUTROOM_PROVIDER_LIMITS=json.dumps({"luma": {"per_minute": 60 / LATENCY_SCALE}}),
        **extra,
    )
