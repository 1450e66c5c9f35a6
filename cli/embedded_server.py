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

import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

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
    """Have the embedded server Prefect starts for this process serve create_app; nothing if a server is set."""
    from prefect.settings import PREFECT_API_URL, get_current_settings

    if PREFECT_API_URL.value():
        return
    from prefect.server.api.server import SubprocessASGIServer

    def launch(self: SubprocessASGIServer) -> subprocess.Popen[Any]:
        # Prefect's own launch (SubprocessASGIServer._run_uvicorn_command, 3.9.1) with our factory.
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                APP,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ]
            + ["--log-level", "error", "--lifespan", "on"],
            env={
                **os.environ,
                "PREFECT_UI_ENABLED": "0",
                "PREFECT__SERVER_EPHEMERAL": "1",
                "PREFECT__SERVER_FINAL": "1",
                **get_current_settings().to_environment_variables(exclude_unset=True),
            },
            # Its own process group: a Ctrl-C at the terminal stops the run (cli/stopping.py), which still
            # needs the server to mark its runs Cancelled, and stops the server itself on the way out.
            process_group=0,
        )

    SubprocessASGIServer._run_uvicorn_command = launch  # type: ignore[method-assign]
