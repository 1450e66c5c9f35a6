"""The `cutroom` command: the Typer app (`cli.app`) and one module per command.

Nothing is imported here: the embedded Prefect server's process loads `cli.embedded_server`, and the benchmarks
`cli.prefect_setup`, without paying for the whole command line.
"""

from __future__ import annotations

import sys


def main() -> None:
    from cli.app import app

    sys.exit(app())
