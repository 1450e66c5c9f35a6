"""Prefect as a CLI run configures it: offline, quiet unless asked, our embedded server, results beside the
campaigns."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from cli.embedded_server import serve_ours

#: Prefect settings a CLI run gives itself and the embedded server it starts (which inherits the environment),
#: unless the environment sets them: offline, and a server that records task states 50 at a time, at least every
#: second, not one SQLite write each — fewer writes for runs being created to wait behind, and less CPU (bench
#: P1, P2: see README, Benchmarks).
PREFECT_DEFAULTS = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "50",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1",
}


@contextlib.contextmanager
def configured_prefect(location: str, verbose: bool) -> Iterator[None]:
    """Prefect configured for a CLI run: offline, quiet unless asked, results kept beside the campaigns."""
    for name, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(name, value)
    if not verbose:
        # Only the console goes quiet (no Prefect lines, no tracebacks: the command says what went wrong in its
        # own words); run logs still reach the Prefect API and UI, and --verbose shows them here.
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    # Without a Prefect server set, the embedded one is ours (no SQLite 503s, no server code in this process),
    # launched with the settings above; it answers before this goes on.
    serve_ours()
    from prefect.settings import (
        PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK,
        PREFECT_RESULTS_LOCAL_STORAGE_PATH,
        temporary_settings,
    )

    if location.startswith("s3:"):
        from tasks.results import save_results_block

        slug = asyncio.run(save_results_block(location))
        results = {PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK: slug}
    else:
        results = {PREFECT_RESULTS_LOCAL_STORAGE_PATH: str(Path(location) / ".cutroom" / "results")}
    with temporary_settings(results):
        yield
