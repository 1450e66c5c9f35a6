"""A free port on the loopback, for a server this machine is about to start (the embedded Prefect server, the
S3 server and the bench's team server, the services tests start)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback port nothing listens on now; whoever binds it next gets it (a race the caller accepts: Prefect
    picks another port for its server if this one was taken meanwhile)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
