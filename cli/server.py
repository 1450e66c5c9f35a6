"""`cutroom server`: the Prefect server a team's workers and runs share, set up as `cutroom run` sets up its own.

It runs as `prefect server start` does in the foreground (Prefect 3.9.1, one process): API, UI and every background
service (scheduler, late runs, cancellation cleanup, triggers and automations, lease expiry of global concurrency
limits) in one uvicorn process, its app marked final. Two things differ: the app comes from our factory, so on
SQLite every write transaction begins IMMEDIATE (cli/embedded_server.py), and the task-run recorder batches as in
a CLI run (PREFECT_DEFAULTS). PostgreSQL takes over from SQLite beyond a few workers, as Prefect recommends.
"""

from __future__ import annotations

import errno
import os
import socket
from typing import Annotated

import typer

from cli.embedded_server import APP
from cli.errors import UserError, friendly
from cli.prefect_setup import PREFECT_DEFAULTS
from cli.terminal import console

#: Each database Prefect's server keeps its data in, by the names a URL may give it, with the async driver it needs.
#: How long `cutroom server` waits for its PostgreSQL database to take a connection before it refuses to start.
DATABASE_TIMEOUT_S = 10.0

DRIVERS = {"postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite"}


@friendly
def server(
    host: Annotated[
        str, typer.Option(help="Address to listen on; 0.0.0.0 lets workers on other machines in.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 4200,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="The server's database, e.g. postgresql+asyncpg://user:pass@host:5432/prefect. "
            "Default: PREFECT_API_DATABASE_CONNECTION_URL, else SQLite under PREFECT_HOME."
        ),
    ] = None,
) -> None:
    """Run a Prefect server (API and UI) for a team's workers and runs, until Ctrl-C."""
    if not 1 <= port <= 65535:
        raise UserError(f"--port {port} is not a port", "give a number from 1 to 65535")
    if database_url is not None:
        os.environ["PREFECT_API_DATABASE_CONNECTION_URL"] = database(database_url)
    listenable(host, port)
    api = f"http://{reachable_name(host)}:{port}/api"
    # The UI talks to this server, whatever PREFECT_API_URL says (PREFECT_UI_API_URL overrides, e.g. behind a proxy).
    for name, value in {**PREFECT_DEFAULTS, "PREFECT_UI_API_URL": api}.items():
        os.environ.setdefault(name, value)
    os.environ["PREFECT__SERVER_FINAL"] = "1"  # as `prefect server start` makes its app
    import uvicorn
    from prefect.settings import get_current_settings

    settings = get_current_settings().server
    answers(settings.database.connection_url.get_secret_value())
    for line in (
        f"Prefect server for the team: {api.removesuffix('/api')}",
        f"  database: {masked(settings.database.connection_url.get_secret_value())}",
        f"  on each worker and CLI machine: export PREFECT_API_URL={api}",
        "Ctrl-C stops it.",
    ):
        console.print(line, highlight=False, soft_wrap=True)
    uvicorn.run(
        APP,
        factory=True,
        host=host,
        port=port,
        timeout_keep_alive=settings.api.keepalive_timeout,
        ws_ping_interval=settings.api.websocket_ping_interval,
        ws_ping_timeout=settings.api.websocket_ping_timeout,
        log_level=settings.logging_level.lower(),
    )


def database(url: str) -> str:
    """The URL as Prefect's server takes it (its async driver named), or a refusal naming what is wrong."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UserError(
            "--database-url is not a database URL",
            "write it as postgresql+asyncpg://user:pass@host:5432/prefect",
        ) from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend not in DRIVERS:
        raise UserError(
            f"--database-url {masked(url)}: Prefect's server keeps its data in PostgreSQL or SQLite, not {backend}",
            "write it as postgresql+asyncpg://user:pass@host:5432/prefect",
        )
    if driver not in ("", DRIVERS[backend].partition("+")[2]):
        raise UserError(
            f"--database-url {masked(url)}: Prefect's server cannot use the driver {driver}",
            f"write {DRIVERS[backend]}:// (or just {backend}://)",
        )
    return parsed.set(drivername=DRIVERS[backend]).render_as_string(hide_password=False)


def answers(url: str) -> None:
    """Refuse before starting when a PostgreSQL database does not take a connection, in one line that says why
    (refused, no such database, wrong password), instead of the server's traceback. SQLite is a file: it is made."""
    import asyncio

    import asyncpg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        return

    async def connect() -> None:
        connection = await asyncpg.connect(
            host=parsed.host,
            port=parsed.port,
            user=parsed.username,
            password=parsed.password,
            database=parsed.database,
            timeout=DATABASE_TIMEOUT_S,
        )
        await connection.close()

    try:
        asyncio.run(connect())
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise UserError(
            f"the database {masked(url)} cannot be used: {_refusal(exc)}",
            "start PostgreSQL there, or check the URL's host, port, user, password and database",
        ) from None


def _refusal(error: Exception) -> str:
    if isinstance(error, TimeoutError):
        return f"no answer in {DATABASE_TIMEOUT_S:g} s"
    if isinstance(error, ConnectionRefusedError):
        return "nothing listens there"
    return (error.strerror if isinstance(error, OSError) else None) or str(error).splitlines()[0]


def masked(url: str) -> str:
    """A database URL fit to print: its password starred."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def listenable(host: str, port: int) -> None:
    """Refuse before starting when the address cannot be listened on, as `prefect server start` does."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except socket.gaierror:
        raise UserError(f"--host {host} is not an address", "give an IP address or host name") from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UserError(
                f"port {port} is already in use", "stop what listens there or pick another --port"
            ) from None
        raise UserError(
            f"cannot listen on {host}:{port}: {exc.strerror}", "give an address of this machine"
        ) from None


def reachable_name(host: str) -> str:
    """How others reach a server listening on `host`: this machine's name when it listens on every address."""
    name = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    return f"[{name}]" if ":" in name else name  # an IPv6 address, as a URL writes it
