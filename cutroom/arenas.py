"""glibc's malloc arenas, capped at two in every process Cutroom starts or is.

glibc gives a thread an arena of its own once others hold theirs (up to 8 per core), and a block freed goes back
only to the arena that gave it. A process whose dozens of threads (Prefect's, uvicorn's, a story's renders and
uploads) each peak at another moment keeps the sum of their peaks. Measured with two arenas, in the same wall time:
a 1,000-story `cutroom run` (bench P7) 457 → 333 MiB and its embedded Prefect server 285 → 236; the team's
`cutroom server` over a 1,000-story campaign on a pool 360 → 263; a 200-story batch run late in a 10,000-story
campaign 801-873 → 383.

Where: the `cutroom` command caps itself and every process it starts (its embedded server, ffmpeg) as it starts
(cli/__init__.py); a pool's workers start story runs with the cap in their job variables (flows/fanout.py).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Mapping

#: The environment variable glibc reads at a process's start, and the cap Cutroom gives it.
VARIABLE, ARENA_MAX = "MALLOC_ARENA_MAX", 2
#: mallopt's parameter for the arena cap (malloc.h).
M_ARENA_MAX = -8


def with_capped_arenas(env: Mapping[str, str]) -> dict[str, str]:
    """A child's environment with the arena cap, unless the environment names a cap of its own."""
    return {VARIABLE: str(ARENA_MAX), **env}


def cap_arenas() -> bool:
    """Cap the arenas of this process from here on and of every process it starts (its environment), unless
    MALLOC_ARENA_MAX already names a cap; whether this process's own cap was set.

    For a process nobody starts with the variable (the `cutroom` command itself). glibc fixes its limit the first
    time a thread needs an arena, so this runs before the process starts threads. Without glibc, only children
    that have it are capped."""
    if VARIABLE in os.environ:
        return False
    os.environ[VARIABLE] = str(ARENA_MAX)  # its ffmpeg runs too: a reel's picture run 369-378 → 341-351 MiB
    if not (name := ctypes.util.find_library("c")):
        return False
    try:
        return bool(ctypes.CDLL(name).mallopt(M_ARENA_MAX, ARENA_MAX))
    except AttributeError:  # a C library without mallopt (musl)
        return False
