"""Where the command writes: what it made to stdout, what went wrong to stderr."""

from __future__ import annotations

from rich.console import Console

console = Console()
err = Console(stderr=True)
