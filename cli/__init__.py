"""The `cutroom` command: the Typer app (`cli.app`) and one module per command.

Nothing is imported here: the embedded Prefect server's process loads `cli.embedded_server`, and the benchmarks
`cli.prefect_setup`, without paying for the whole command line.
"""

from __future__ import annotations

import atexit
import os
import sys

#: The exit status the command ended with, once it has ended by SystemExit (Typer ends every command so).
_status: int | None = None


def main() -> None:
    global _status
    # Registered before anything else: exit handlers run last-registered first, so this one runs after all the
    # others (Prefect stopping its server and flushing its logs, logging's shutdown, temporary folders removed).
    atexit.register(_end_without_teardown)
    # Before any thread starts (cutroom/malloc.py).
    from cutroom.malloc import tune_malloc

    tune_malloc()
    from cli.app import app

    try:
        sys.exit(app())
    except SystemExit as end:
        code = end.code
        _status = code if isinstance(code, int) else 0 if code is None else 1
        raise


def _end_without_teardown() -> None:
    """End the process once every exit handler has run, without the interpreter's teardown of a run's objects and
    modules: ≈ 0.9 s after a campaign (bench P4), paid on every command and changing nothing on disk. Only after a
    SystemExit, whose message is printed by then; an uncaught error ends as Python ends it."""
    if _status is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_status)
