"""Helpers tests import (conftest.py is never imported directly: it sets up the session)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent


def cutroom(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run the real `cutroom` command as a user would."""
    return subprocess.run(
        [str(BIN / "cutroom"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        timeout=900,
    )


def prefect(*args: str, api: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the real `prefect` command from the checkout, as a user deploying it would; `api` names another server
    than the session's."""
    env = {
        **os.environ,
        "CUTROOM_CHECKOUT": str(ROOT),
        "COLUMNS": "200",
        **({"PREFECT_API_URL": api} if api else {}),
    }
    return subprocess.run(
        [str(BIN / "prefect"), "--no-prompt", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=timeout,
    )
