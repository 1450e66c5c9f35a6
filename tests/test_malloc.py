"""glibc's malloc told to give memory back (cutroom/malloc.py), measured in child processes: the arenas 16 threads
leave, and what a process keeps after freeing big blocks."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cutroom.malloc import SETTINGS, with_malloc_settings
from tests.helpers import ROOT

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")

#: The child: tunes itself or not, then does its work, then prints what it set itself, the settings its own
#: children would start with, and the figure its work measured.
CHILD = """
import json, os, sys
from cutroom.malloc import SETTINGS, tune_malloc

tuned = tune_malloc() if sys.argv[1] == "tune" else []
{work}
print(json.dumps([tuned, {{name: os.environ.get(name) for name in SETTINGS}}, measured]))
"""

#: 16 threads allocate at once and keep their blocks; then glibc's own account of its heaps is counted
#: (malloc_info's XML: a <heap nr=…> per arena).
ARENAS = """
import ctypes, ctypes.util, tempfile, threading
start, done = threading.Barrier(16), threading.Barrier(17)
held = []

def allocate():
    start.wait()
    held.append([bytearray(4096) for _ in range(200)])
    done.wait()

threads = [threading.Thread(target=allocate) for _ in range(16)]
for thread in threads:
    thread.start()
done.wait()
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.fopen.restype = ctypes.c_void_p
with tempfile.NamedTemporaryFile(suffix=".xml") as sheet:
    stream = libc.fopen(sheet.name.encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(stream))
    libc.fclose(ctypes.c_void_p(stream))
    measured = open(sheet.name).read().count("<heap nr=")
for thread in threads:
    thread.join()
"""

#: A frame's worth (1 MiB) freed, as a decoder or a score does; then 200 such blocks made and all freed but the
#: last. MiB resident above the start, after.
BIG_BLOCKS = """
def resident():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

before = resident()
del bytearray(2**20)[:]
blocks = [bytearray(2**20) for _ in range(200)]
del blocks[:-1]
measured = resident() - before
"""


def child(work: str, env: dict[str, str], tune: bool) -> tuple[list[str], dict[str, str | None], float]:
    """What the child set itself, the settings its children would get, and what its work measured."""
    import json

    done = subprocess.run(
        [sys.executable, "-c", CHILD.format(work=work), "tune" if tune else "leave"],
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    tuned, inherited, measured = json.loads(done.stdout)
    return tuned, inherited, measured


def untuned() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in SETTINGS}


def test_a_process_left_as_glibc_leaves_it_keeps_many_arenas_and_freed_big_blocks():
    # What the tests below are read against: without it, they would pass whatever the settings did.
    tuned, inherited, arenas = child(ARENAS, untuned(), tune=False)
    assert (tuned, set(inherited.values())) == ([], {None})
    assert arenas > 2
    assert child(BIG_BLOCKS, untuned(), tune=False)[2] > 150


def test_a_process_that_tunes_itself_before_its_threads_and_its_children_give_memory_back():
    tuned, inherited, arenas = child(ARENAS, untuned(), tune=True)
    assert tuned == list(SETTINGS)
    assert inherited == SETTINGS
    assert arenas <= 2
    assert child(BIG_BLOCKS, untuned(), tune=True)[2] < 20


def test_a_child_started_with_the_settings_in_its_environment_gives_memory_back():
    assert child(ARENAS, with_malloc_settings(untuned()), tune=False)[2] <= 2
    assert child(BIG_BLOCKS, with_malloc_settings(untuned()), tune=False)[2] < 20


def test_a_setting_the_user_made_is_kept_in_the_process_and_its_children():
    mine = {**untuned(), "MALLOC_ARENA_MAX": "4"}
    assert with_malloc_settings(mine)["MALLOC_ARENA_MAX"] == "4"
    tuned, inherited, arenas = child(ARENAS, mine, tune=True)
    assert tuned == ["MALLOC_MMAP_THRESHOLD_"]
    assert inherited["MALLOC_ARENA_MAX"] == "4"
    assert 2 < arenas <= 4
