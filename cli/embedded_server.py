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
from collections.abc import AsyncIterator, Callable
from typing import Any

from cutroom.loopback import free_port
from cutroom.malloc import with_malloc_settings

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
    """Have the embedded server Prefect starts for this process serve create_app, launched at once; nothing if a
    server is set.

    Launched here rather than when the run first asks Prefect for a client, so it boots (≈ 4.5 s: imports,
    migrations checked, services started) while the command imports Prefect's server module and its flows
    (≈ 3 s), not after them: a run's first vendor request comes that much sooner (bench P4, whose resume pays the
    whole start-up for half the work). Prefect's own start then finds it launched and waits for it to answer.
    """
    from prefect.settings import PREFECT_API_URL, get_current_settings

    if PREFECT_API_URL.value():
        return
    server = sys.modules.get("prefect.server.api.server")
    launched = server and server.SubprocessASGIServer._instances.get(None)
    if launched and launched.server_process is not None:  # served already (a second command in this process)
        return
    port = free_port()
    settings = get_current_settings().to_environment_variables(exclude_unset=True)
    early = _launch(port, settings, preexec_fn=_ends_with_this_process())
    from prefect.server.api.server import SubprocessASGIServer

    embedded = SubprocessASGIServer()  # the instance every client of this process starts and asks
    embedded.port, embedded.server_process = port, early
    atexit.register(embedded.stop)  # Prefect registers its stop only once it starts the server itself

    def launch(self: SubprocessASGIServer) -> subprocess.Popen[Any]:
        # In place of Prefect's SubprocessASGIServer._run_uvicorn_command (3.9.1): the server launched early while
        # it runs, else (its port was taken meanwhile, or it was stopped) ours on the port Prefect chose.
        if self.server_process is not None and self.server_process.poll() is None:
            return self.server_process
        return _launch(self.port, get_current_settings().to_environment_variables(exclude_unset=True))

    SubprocessASGIServer._run_uvicorn_command = launch  # type: ignore[method-assign]


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
