"""Which Prefect server this process runs on: one it shares (PREFECT_API_URL, e.g. `cutroom server` for a team),
or the embedded one a CLI run launched for itself, which ends with the command.

The embedded server is set as PREFECT_API_URL too (cli/embedded_server.py), so that Prefect's client asks it
directly; EMBEDDED_API names it, so that what needs a server that outlives the command (a review gate, a story
pool, slots capped across processes, Secret blocks) still tells the two apart.
"""

from __future__ import annotations

import os

#: The environment variable that holds the embedded server's API URL while this process (and what it starts)
#: runs on it.
EMBEDDED_API = "CUTROOM_EMBEDDED_API_URL"


def shared_server() -> str | None:
    """The API URL of the Prefect server this process shares with others; None on none or on the embedded one."""
    from prefect.settings import PREFECT_API_URL

    api = PREFECT_API_URL.value()
    return api if api and api != os.environ.get(EMBEDDED_API) else None
