"""A team's set-up in miniature for the benchmarks: `cutroom server`, one S3 bucket and Prefect process workers.

As README "Running it as a team" sets it up on several machines, here on one: the server on SQLite in a Prefect
home of its own (fine for a few workers, README says), SeaweedFS for the bucket, and each worker a `prefect worker
start` process in its own folder with its own Prefect home — two machines in miniature that share only the
server, the bucket and the vendors (the simulator). A campaign run with CUTROOM_STORY_POOL set makes the pool and
its `story` deployment itself (flows/fanout.py), so nothing is deployed beforehand.

The tests have their own helpers for the same set-up (tests/team_fixture.py, tests/workers.py); the benchmarks do
not import tests.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.campaigns import (
    CUTROOM,
    ROOT,
    SAMPLE_EVERY_S,
    Process,
    environment,
    prefect_home,
    process_tree,
    running,
)
from cutroom.loopback import free_port
from simulator.s3 import serve_s3

PREFECT = str(Path(CUTROOM[0]).with_name("prefect"))


@dataclass
class Team:
    """A running team: the server's API, the bucket's location for campaigns, the environment every process of
    the team gets (server, bucket, simulator, vendor caps), where its logs go, and the server's PID."""

    api: str
    location: str
    env: dict[str, str]
    folder: Path
    server_pid: int


@contextmanager
def team(folder: Path, **extra: str) -> Iterator[Team]:
    """`cutroom server` and a SeaweedFS bucket, both up, until the block ends; `extra` joins every environment."""
    with ExitStack() as stack:
        s3 = stack.enter_context(serve_s3())  # points this process's AWS_* at it, which the children inherit
        port = free_port()
        api = f"http://127.0.0.1:{port}/api"
        home = prefect_home(folder)  # a database already migrated: the server starts in seconds
        server = stack.enter_context(
            running([*CUTROOM, "server", "--port", str(port)], environment(home), folder / "server.log")
        )
        _wait(lambda: _healthy(api), server, folder / "server.log", "cutroom server", 120)
        env = environment(home, PREFECT_API_URL=api, **extra)
        yield Team(api, f"s3://{s3.bucket}/team", env, folder, server.pid)


def _healthy(api: str) -> bool:
    with suppress(httpx.HTTPError):
        return httpx.get(f"{api}/health", timeout=1).status_code == 200
    return False


def _wait(ready, process, log: Path, what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up; the end of its log:\n{log.read_text()[-2000:]}")
        time.sleep(0.2)


@contextmanager
def worker(team: Team, pool: str, name: str, limit: int) -> Iterator[int]:
    """`prefect worker start` on a process pool, in a folder and Prefect home of its own, taking runs of this
    checkout (CUTROOM_CHECKOUT) at most `limit` at once; yields its PID once the server knows it.

    At the end every process of its tree is killed, by PID, story runs too: they run in sessions of their own,
    and a worker whose server is gone ignores SIGTERM."""
    folder = team.folder / name
    folder.mkdir()
    env = {
        **team.env,
        "PREFECT_HOME": str(folder / "prefect"),
        "CUTROOM_CHECKOUT": str(ROOT),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "1",
    }
    command = [PREFECT, "worker", "start", "--pool", pool, "--type", "process", "--name", name]
    log = folder / "worker.log"
    with running([*command, "--limit", str(limit)], env, log) as process:
        try:
            _wait(lambda: name in _workers(team.api, pool), process, log, f"worker {name}", 120)
            yield process.pid
        finally:
            for pid in process_tree(process.pid):
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def _workers(api: str, pool: str) -> set[str]:
    with suppress(httpx.HTTPError):
        answer = httpx.post(f"{api}/work_pools/{pool}/workers/filter", json={}, timeout=5)
        if answer.status_code == 200:
            return {w["name"] for w in answer.json()}
    return set()


@dataclass
class Load:
    """What one worker held while it was weighed: its process tree's peak RSS, its own, and each story run's."""

    peak_mib: float = 0.0
    own_mib: float = 0.0
    #: Story runs seen at once, at most.
    held: int = 0
    #: Story runs held when the tree was at its peak.
    held_at_peak: int = 0
    #: Each story run (by the PID of its process) at its largest, with the processes it started (ffmpeg).
    stories_mib: dict[int, float] = field(default_factory=dict)
    #: The largest any one process under the worker (a story run's Python, an ffmpeg it started) held.
    largest_child_mib: float = 0.0


@contextmanager
def weighed(workers: dict[str, int]) -> Iterator[dict[str, Load]]:
    """Each worker's process tree weighed every SAMPLE_EVERY_S while the block runs. A process worker starts each
    story run as a child process of its own (Prefect 3.9.1: `python -m prefect.runner._workspace_supervisor`, which
    runs the pull steps and then execs `python -m prefect.engine` in the same process), which starts ffmpeg in
    turn: every child of the worker is one story run, weighed with its descendants."""
    loads = {name: Load() for name in workers}
    done = threading.Event()

    def weigh() -> None:
        while not done.wait(SAMPLE_EVERY_S):
            for name, pid in workers.items():
                tree, load = process_tree(pid), loads[name]
                stories = {p: _subtree_rss(tree, p) / 2**20 for p, proc in tree.items() if proc.parent == pid}
                if (mib := sum(p.rss for p in tree.values()) / 2**20) > load.peak_mib:
                    load.peak_mib, load.held_at_peak = mib, len(stories)
                if pid in tree:
                    load.own_mib = max(load.own_mib, tree[pid].rss / 2**20)
                load.held = max(load.held, len(stories))
                children = (proc.rss / 2**20 for p, proc in tree.items() if p != pid)
                load.largest_child_mib = max(load.largest_child_mib, *children, 0.0)
                for story, mib in stories.items():
                    load.stories_mib[story] = max(load.stories_mib.get(story, 0.0), mib)

    scale = threading.Thread(target=weigh, name="worker-rss", daemon=True)
    scale.start()
    try:
        yield loads
    finally:
        done.set()
        scale.join()


def _subtree_rss(tree: dict[int, Process], root: int) -> int:
    """Bytes resident in a process of the tree and its descendants in it."""
    below = [pid for pid, process in tree.items() if process.parent == root]
    return tree[root].rss + sum(_subtree_rss(tree, pid) for pid in below)
