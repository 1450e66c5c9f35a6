"""Shared test fixtures. Prefect runs against one real `prefect server` started for the session."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from cutroom.loopback import free_port

ROOT = Path(__file__).resolve().parent.parent

#: The vendor simulator, a real S3 server (SeaweedFS) and a PostgreSQL cluster on loopback.
pytest_plugins = ["tests.simulator_fixture", "tests.s3_fixture", "tests.postgres_fixture"]
BIN = Path(sys.executable).parent


# Set before anything imports prefect, so this process and every CLI it starts use the test server.
_HOME = Path(tempfile.mkdtemp(prefix="cutroom-prefect-"))
_PORT = free_port()
os.environ.update(
    {
        "PREFECT_HOME": str(_HOME),
        "PREFECT_API_URL": f"http://127.0.0.1:{_PORT}/api",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.5",
        # Every reel and offline clip encoded at x264's fastest preset: a third of the CPU, the same frames and
        # lengths. tests/test_assembly.py encodes as for a channel, and bench P5 measures that.
        "CUTROOM_DRAFT_RENDERS": "1",
    }
)


#: The files whose tests take longest, longest first: started first, so that the workers finish together
#: instead of one finishing a long test alone at the end (measured with --durations on 2 cores).
LONGEST_FIRST = (
    "test_team_scale.py",
    "test_kill_points.py",
    "test_deployments.py",
    "test_review_gate.py",
    "test_fanout.py",
    "test_durable.py",
    "test_secrets.py",
    "test_campaign.py",
    "test_budget_and_limits.py",
    "test_video_vendors.py",
    "test_brain.py",
    "test_studio_vendors.py",
    "test_late_failure.py",
    "test_fallback.py",
    "test_embedded_server.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: n for n, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONGEST_FIRST)))


@pytest.fixture(scope="session")
def prefect_server():
    """A real Prefect API server on loopback for the whole session: `cutroom server`, as a team runs it (SQLite
    write transactions begun IMMEDIATE, task states recorded in batches), without the UI nobody opens here."""
    log = (_HOME / "server.log").open("w")
    proc = subprocess.Popen(
        [str(BIN / "cutroom"), "server", "--host", "127.0.0.1", "--port", str(_PORT)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PREFECT_UI_ENABLED": "false"},
    )
    url = os.environ["PREFECT_API_URL"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            pytest.fail(f"prefect server exited: {(_HOME / 'server.log').read_text()[-2000:]}")
        time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("prefect server did not become healthy in 120 s")
    yield url
    _drain_prefect_clients()
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def _drain_prefect_clients() -> None:
    """Flush this process's queued run logs and events while the server still listens."""
    if "prefect" not in sys.modules:
        return
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    EventsWorker.drain_all(timeout=10)


@pytest.fixture
def example_brief() -> Path:
    return ROOT / "examples" / "briefs" / "aurora-launch.yaml"
