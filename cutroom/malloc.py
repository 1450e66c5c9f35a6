"""glibc's malloc told to give memory back, in every process Cutroom is or starts: two arenas, big blocks mapped.

- **Arenas.** glibc gives a thread an arena of its own once others hold theirs (up to 8 per core), and a block
  freed goes back only to the arena that gave it. A process whose dozens of threads (Prefect's, uvicorn's, a
  story's renders and uploads) each peak at another moment keeps the sum of their peaks. Capped at two.
- **Big blocks.** A block of 128 KiB or more is mapped on its own and unmapped when freed, unless glibc has
  raised that threshold: it does, up to 32 MiB, each time such a block is freed, after which decoded frames,
  score arrays and response bodies stay in the heap once freed. Fixed at 128 KiB.

Measured on bench P7's 1,000-story `cutroom run` (the command, its embedded Prefect server, its reel's ffmpeg; MiB
at the peak of the whole tree): as glibc leaves it 457 + 285 + 360 = 1,102; two arenas 368 + 241 + 322 = 931;
both 285 + 228 + 296 = 809. It costs some wall time: at 100 stories 44.5-45.4 s → 47.2-49.6 s (749-763 MiB
from 987-1,016). With two arenas, the team's `cutroom server` over a 1,000-story campaign on a pool 360 → 263,
and a 200-story batch run late in a 10,000-story campaign 801-873 → 383.

Where: the `cutroom` command tunes itself, and every process it starts by its environment, as it starts
(cli/__init__.py); a pool's workers start story runs with the settings in their job variables (flows/fanout.py).
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping

#: Each setting as glibc reads it from the environment at a process's start, and as mallopt's parameter
#: (malloc.h: M_ARENA_MAX, M_MMAP_THRESHOLD) for a process already started.
SETTINGS = {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}
_MALLOPT = {"MALLOC_ARENA_MAX": -8, "MALLOC_MMAP_THRESHOLD_": -3}


def with_malloc_settings(env: Mapping[str, str]) -> dict[str, str]:
    """A child's environment with the settings, but for any the environment already names."""
    return {**SETTINGS, **env}


def tune_malloc() -> list[str]:
    """Apply each setting the environment does not name, to this process from here on and to every process it
    starts (its environment); the ones set in this process itself.

    For a process nobody starts with the settings (the `cutroom` command itself). glibc fixes its arena limit the
    first time a thread needs an arena, so this runs before the process starts threads. Without glibc, only
    children that have it are tuned."""
    todo = {name: value for name, value in SETTINGS.items() if name not in os.environ}
    os.environ.update(todo)
    try:  # the process's own symbols, libc's among them: no `ldconfig -p` read (find_library) on every start
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no C library loaded, or one without mallopt (musl)
        return []
    return [name for name, value in todo.items() if mallopt(_MALLOPT[name], int(value))]
