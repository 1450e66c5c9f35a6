"""Prefect process workers for tests, each a machine in miniature: its own process and working folder."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.helpers import BIN, ROOT


@contextmanager
def process_worker(
    pool: str, folder: Path, name: str, limit: int = 4, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    """`prefect worker start` on a process pool (made if missing), run from `folder` and taking runs of its
    checkout (CUTROOM_CHECKOUT); its log is `folder/worker.log`."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "worker.log").open("w") as log:
        proc = subprocess.Popen(
            [str(BIN / "prefect"), "worker", "start", "--pool", pool, "--type", "process"]
            + ["--name", name, "--limit", str(limit)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=folder,
            env={
                **os.environ,
                "CUTROOM_CHECKOUT": str(ROOT),
                "PREFECT_WORKER_QUERY_SECONDS": "1",
                "PREFECT_WORKER_PREFETCH_SECONDS": "1",
                **(env or {}),
            },
        )
    try:
        _wait_for_worker(pool, name, proc, folder)
        yield proc
    finally:
        stop_worker(proc)


def stop_worker(proc: subprocess.Popen) -> None:
    """SIGKILL, which a second SIGTERM would make it send itself. Prefect 3.9's worker turns the first SIGTERM into
    a SIGINT that its command's event loop swallows: idle, with its server up, it was still alive 90 s later, and
    each test teardown that waited for it lost 20 s."""
    proc.kill()
    proc.wait()


def _wait_for_worker(pool: str, name: str, proc: subprocess.Popen, folder: Path, timeout: float = 60) -> None:
    """Until the worker has told the server it is there, so a run scheduled next is taken at once."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"worker {name} exited: {(folder / 'worker.log').read_text()[-2000:]}")
            with contextlib.suppress(
                ObjectNotFound, httpx.HTTPStatusError
            ):  # the worker makes the pool first
                if any(w.name == name for w in client.read_workers_for_work_pool(pool)):
                    return
            time.sleep(0.3)
    raise RuntimeError(f"worker {name} did not reach the server in {timeout:.0f} s")
