"""A throwaway PostgreSQL cluster on loopback for the test session: the database a team's Prefect server keeps."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cutroom.loopback import free_port

#: The password of the cluster's superuser: connections over TCP must give it, so URLs carry one to hide.
PASSWORD = "cutroom-secret"


def postgres_bin() -> Path | None:
    """The folder of PostgreSQL's server programs: on PATH, else Debian's newest under /usr/lib/postgresql."""
    if found := shutil.which("initdb"):
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return versions[-1].parent if versions else None


def _as_owner(command: list[str]) -> list[str]:
    """The command as the `postgres` user when we are root: initdb and the server refuse to run as root."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """An empty database on a PostgreSQL cluster of its own, as an asyncpg URL with a password; stopped at the end."""
    programs = postgres_bin()
    if programs is None:
        pytest.skip("no PostgreSQL installed (`make postgres` installs Debian's)")
    root = Path(tempfile.mkdtemp(prefix="cutroom-postgres-"))
    data, port, password = root / "data", free_port(), root / "password"
    password.write_text(PASSWORD)
    if os.geteuid() == 0:
        for path in (root, password):
            shutil.chown(path, "postgres", "postgres")

    def run(*command: str) -> None:
        done = subprocess.run(
            _as_owner([str(programs / command[0]), *command[1:]]), capture_output=True, text=True
        )
        if done.returncode != 0:
            pytest.fail(f"{command[0]} failed: {done.stdout[-1500:]}{done.stderr[-1500:]}")

    try:
        run("initdb", "-D", str(data), "-U", "postgres", f"--pwfile={password}", "--auth-local=trust",
            "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8")  # fmt: skip
        settings = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} -c fsync=off"
        )
        run(
            "pg_ctl",
            "start",
            "-D",
            str(data),
            "-w",
            "-t",
            "60",
            "-l",
            str(root / "server.log"),
            "-o",
            settings,
        )
        try:
            run("createdb", "-h", str(root), "-p", str(port), "-U", "postgres", "prefect")
            yield f"postgresql+asyncpg://postgres:{PASSWORD}@127.0.0.1:{port}/prefect"
        finally:
            run("pg_ctl", "stop", "-D", str(data), "-m", "fast", "-w")
    finally:
        shutil.rmtree(root, ignore_errors=True)
