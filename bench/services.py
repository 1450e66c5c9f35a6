"""Loopback services the benchmarks start for themselves: the vendor simulator (S3 is simulator.s3.serve_s3)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from providers.simulation import SIMULATOR_ENV
from simulator.app import build_app
from simulator.core import SimConfig


@contextmanager
def vendor_simulator(config: SimConfig) -> Iterator[str]:
    """The simulator on a free loopback port in a thread of this process; meanwhile every vendor adapter
    built here talks to it (CUTROOM_SIMULATOR_URL). Yields its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(
            build_app(config),
            host="127.0.0.1",
            port=0,
            log_level="critical",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
    )
    thread = threading.Thread(target=server.run, name="vendor-simulator", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the vendor simulator did not start in 10 s")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    saved = os.environ.get(SIMULATOR_ENV)
    os.environ[SIMULATOR_ENV] = f"http://127.0.0.1:{port}"
    try:
        yield os.environ[SIMULATOR_ENV]
    finally:
        if saved is None:
            os.environ.pop(SIMULATOR_ENV, None)
        else:
            os.environ[SIMULATOR_ENV] = saved
        server.should_exit = True
        thread.join(timeout=5)
