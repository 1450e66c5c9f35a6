"""`cutroom server` started as a team starts it, for tests that need a team's Prefect server of their own."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cutroom.loopback import free_port
from tests.helpers import BIN


@dataclass
class TeamServer:
    """A running `cutroom server`: its API URL (what PREFECT_API_URL is set to), its process and its output."""

    api: str
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text()

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM, as a service manager stops it; its exit code."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


@contextlib.contextmanager
def team_server(home: Path, database_url: str | None = None) -> Iterator[TeamServer]:
    """`cutroom server` on loopback, healthy, its Prefect home in `home` (SQLite there without a database URL)."""
    home.mkdir(parents=True, exist_ok=True)
    port, log = free_port(), home / "server.log"
    command = [str(BIN / "cutroom"), "server", "--port", str(port)]
    command += ["--database-url", database_url] if database_url else []
    env = {**os.environ, "PREFECT_HOME": str(home), "COLUMNS": "200"}
    env.pop("PREFECT_API_DATABASE_CONNECTION_URL", None)
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    server = TeamServer(f"http://127.0.0.1:{port}/api", process, log)
    try:
        deadline = time.monotonic() + 120
        while not _healthy(server.api):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"cutroom server did not become healthy: {server.output()[-2000:]}")
            time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            server.stop()


def _healthy(api: str) -> bool:
    try:
        return httpx.get(f"{api}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
