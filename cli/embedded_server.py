"""The Prefect server a CLI run starts for itself: Prefect's embedded server, its SQLite write transactions begun
IMMEDIATE.

Prefect 3.9.1 begins its write transactions DEFERRED, and many read before they write (creating a task run reads
its flow run's labels first). When another connection commits in between, SQLite fails the write at once with
"database is locked" — a stale snapshot cannot wait its turn, so the busy timeout does not apply — the API answers
503 and Prefect's client retries after 2 s, 4 s, 8 s … (PrefectHQ/prefect#18934). A 50-story campaign met 66–86
such retries creating its story subflows. Begun IMMEDIATE, a transaction takes the write lock first and waits for
it under SQLite's busy timeout (60 s): writers queue for milliseconds instead. Reads outside transactions still
run beside the writer (WAL).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from cutroom.loopback import free_port
from cutroom.malloc import with_malloc_settings
from cutroom.prefect_server import EMBEDDED_API

#: uvicorn's factory for the embedded server, as `module:function`.
APP = f"{__name__}:create_app"


def create_app() -> Any:
    """Prefect's server app (its embedded-server settings come from the environment), every SQLite transaction it
    begins taking the write lock up front."""
    from prefect.server.api.server import create_app as prefect_app
    from prefect.server.database.configurations import SQLITE_BEGIN_MODE, AioSqliteConfiguration
    from prefect.server.database.interface import PrefectDBInterface

    begin = AioSqliteConfiguration.begin_transaction
    session_context = PrefectDBInterface.session_context

    def begin_immediate(self: AioSqliteConfiguration, session: Any, with_for_update: bool = False) -> Any:
        return begin(self, session, with_for_update=True)  # Prefect's name for BEGIN IMMEDIATE on SQLite

    @contextlib.asynccontextmanager
    async def nested_deferred(
        self: PrefectDBInterface, begin_transaction: bool = False, with_for_update: bool = False
    ) -> AsyncIterator[Any]:
        # The begin mode is a context variable: a session opened without a transaction of its own inside one
        # begun IMMEDIATE (updating a work queue emits its event that way) would wait for the write lock its
        # own request holds. It begins DEFERRED, as it does in Prefect unpatched.
        nested = not begin_transaction and SQLITE_BEGIN_MODE.get() == "IMMEDIATE"
        token = SQLITE_BEGIN_MODE.set("DEFERRED") if nested else None
        try:
            async with session_context(self, begin_transaction, with_for_update) as session:
                yield session
        finally:
            if token is not None:
                SQLITE_BEGIN_MODE.reset(token)

    AioSqliteConfiguration.begin_transaction = begin_immediate  # type: ignore[method-assign]
    PrefectDBInterface.session_context = nested_deferred  # type: ignore[method-assign]
    return prefect_app()


def serve_ours() -> None:
    """Launch the embedded server and point this process, and every process it starts, at it (PREFECT_API_URL,
    marked as ours: cutroom/prefect_server.py); nothing if a server is set or this process serves already.

    Ours rather than Prefect's ephemeral one, which Prefect starts by importing its whole server in the client
    (FastAPI, SQLAlchemy, every route: +76 MiB RSS and 1.5 s of CPU in the `cutroom` process, bench P7). Launched
    as the command starts, it boots (≈ 4.5 s: imports, migrations checked, services started) while the command
    loads Prefect; this waits until it answers, as Prefect's own start does.
    """
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

    if PREFECT_API_URL.value():
        return
    port, server = _started(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
    _served.append(server)
    atexit.register(stop_ours)
    _point_at(f"http://127.0.0.1:{port}/api")


def stop_ours(patience_s: float = 5.0) -> None:
    """Stop the embedded server this process launched, if it did; this process no longer points at it."""
    while _served:
        server = _served.pop()
        server.terminate()
        try:
            server.wait(timeout=patience_s)
        except subprocess.TimeoutExpired:  # it had its chance
            server.kill()
            server.wait()
        _point_at(None)


#: The embedded server this process launched and runs on, while it does.
_served: list[subprocess.Popen[Any]] = []

#: uvicorn's exit status when its port is taken.
PORT_TAKEN = 3


def _started(timeout_s: float) -> tuple[int, subprocess.Popen[Any]]:
    """The server launched, on a port of its own, once it answers; a clear error if it does not in time."""
    import httpx
    from prefect.settings import get_current_settings

    settings = get_current_settings().to_environment_variables(exclude_unset=True)
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=5) as http:
        while True:
            port = free_port()
            server = _launch(port, settings, preexec_fn=_ends_with_this_process())
            while server.poll() is None and time.monotonic() < deadline:
                with contextlib.suppress(httpx.TransportError):
                    if http.get(f"http://127.0.0.1:{port}/api/health").status_code == 200:
                        return port, server
                time.sleep(0.1)
            # Launched again only if its port was taken between our choosing it and uvicorn binding it.
            if server.poll() != PORT_TAKEN or time.monotonic() >= deadline:
                break
    server.kill()
    status = server.wait()
    raise RuntimeError(
        f"the embedded Prefect server did not answer within {timeout_s:.0f} s (exit status {status}); "
        "set PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS higher, or PREFECT_API_URL to a running server"
    )


def _point_at(embedded_api: str | None) -> None:
    """This process's Prefect API: the embedded server's, or none once it is stopped; for its children and for its
    threads that carry no settings of their own (Prefect's log and event workers)."""
    from prefect.context import refresh_global_settings_context

    for name in ("PREFECT_API_URL", EMBEDDED_API):
        if embedded_api is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = embedded_api
    refresh_global_settings_context()


def _ends_with_this_process() -> Callable[[], None] | None:
    """For a child launched from the main thread: have Linux send it SIGTERM when this process dies, however it
    dies. Its own process group keeps it from a Ctrl-C meant for the run, so without this a `cutroom run` killed
    with SIGKILL left its server running for good, on the database the next run (the resume) uses (bench P4).
    Linux ties this to the launching thread: from any other, whose end is not the process's, nothing."""
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the child only calls it

    def ends() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    return ends


#: prctl's option that names the signal a process gets when its parent dies (linux/prctl.h).
PR_SET_PDEATHSIG = 1


def _launch(
    port: int, settings: dict[str, str], preexec_fn: Callable[[], None] | None = None
) -> subprocess.Popen[Any]:
    """Prefect's embedded-server command (SubprocessASGIServer._run_uvicorn_command, 3.9.1) with our factory."""
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", APP, "--host", "127.0.0.1", "--port", str(port)]
        + ["--log-level", "error", "--lifespan", "on"],
        env=with_malloc_settings(
            {
                **os.environ,
                "PREFECT_UI_ENABLED": "0",
                "PREFECT__SERVER_EPHEMERAL": "1",
                "PREFECT__SERVER_FINAL": "1",
                **settings,
            }
        ),
        # Its own process group: a Ctrl-C at the terminal stops the run (cli/stopping.py), which still
        # needs the server to mark its runs Cancelled, and stops the server itself on the way out.
        process_group=0,
        preexec_fn=preexec_fn,
    )
