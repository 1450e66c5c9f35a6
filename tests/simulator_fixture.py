"""A session-wide vendor simulator on loopback: `pytest_plugins = ["tests.simulator_fixture"]` to use it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from cutroom.loopback import free_port
from simulator.app import build_app
from simulator.core import SimConfig


class SimulatorHandle:
    """The running simulator: its base URL and its /_sim control endpoints."""

    def __init__(self, url: str):
        self.url = url
        self._http = httpx.Client(base_url=url, timeout=10)

    def configure(self, **changes: Any) -> dict[str, Any]:
        response = self._http.post("/_sim/config", json=changes)
        response.raise_for_status()
        return response.json()

    def requests(self) -> list[dict[str, Any]]:
        response = self._http.get("/_sim/requests")
        response.raise_for_status()
        return response.json()

    def jobs(self) -> list[dict[str, Any]]:
        """Every vendor job with its creation and finish time."""
        response = self._http.get("/_sim/jobs")
        response.raise_for_status()
        return response.json()

    def reset(self, **changes: Any) -> dict[str, Any]:
        """Clear the request log and return to the default config plus `changes`."""
        self._http.post("/_sim/reset").raise_for_status()
        return self.configure(**{**SimConfig().model_dump(mode="json"), **changes})

    def close(self) -> None:
        self._http.close()


@pytest.fixture(scope="session")
def simulator() -> Iterator[SimulatorHandle]:
    port = free_port()
    config = uvicorn.Config(
        build_app(),
        host="127.0.0.1",
        port=port,
        log_level="critical",
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="vendor-simulator", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the vendor simulator did not start in 10 s")
        time.sleep(0.02)
    handle = SimulatorHandle(f"http://127.0.0.1:{port}")
    yield handle
    handle.close()
    server.should_exit = True
    thread.join(timeout=5)


@pytest.fixture
def flows_on_simulator(simulator, prefect_server, monkeypatch, tmp_path) -> Iterator[SimulatorHandle]:
    """Flows run in this process with every vendor adapter on the simulator (built afresh for it, on its clock)
    and their task results under the test's own folder."""
    from prefect.settings import PREFECT_RESULTS_LOCAL_STORAGE_PATH, temporary_settings

    from providers import registry, simulation

    monkeypatch.setenv(simulation.SIMULATOR_ENV, simulator.url)
    registry.reset()
    simulation._latency_scale.cache_clear()
    with temporary_settings({PREFECT_RESULTS_LOCAL_STORAGE_PATH: str(tmp_path / "results")}):
        yield simulator
    registry.reset()
    simulation._latency_scale.cache_clear()
