"""glibc's malloc arenas, capped at two: counted in a child process whose threads all allocate at once."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cutroom.arenas import VARIABLE, with_capped_arenas
from tests.helpers import ROOT

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")

#: 16 threads allocate at once and keep their blocks; then glibc's own account of its heaps (malloc_info's XML,
#: a <heap nr=…> per arena) is counted. Prints whether the cap was set here, then how many arenas there are.
THREADS = """
import ctypes, ctypes.util, os, sys, tempfile, threading
from cutroom.arenas import cap_arenas

capped = cap_arenas() if sys.argv[1] == "cap" else False
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
    print(capped, open(sheet.name).read().count("<heap nr="), os.environ.get("MALLOC_ARENA_MAX", "-"))
for thread in threads:
    thread.join()
"""


def arenas(env: dict[str, str], cap: bool) -> tuple[bool, int, str]:
    """Whether cap_arenas capped the child, how many arenas its 16 threads left it with, and the cap its own
    children would start with ("-": none)."""
    done = subprocess.run(
        [sys.executable, "-c", THREADS, "cap" if cap else "no"],
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    capped, count, inherited = done.stdout.split()
    return capped == "True", int(count), inherited


def uncapped() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != VARIABLE}


def test_sixteen_threads_of_a_process_left_alone_use_more_than_two_arenas():
    # The measure the cap is read against: without it, the count below would pass whatever the cap did.
    capped, count, inherited = arenas(uncapped(), cap=False)
    assert not capped
    assert count > 2
    assert inherited == "-"


def test_a_process_that_caps_itself_before_its_threads_uses_at_most_two_and_so_do_its_children():
    capped, count, inherited = arenas(uncapped(), cap=True)
    assert capped
    assert count <= 2
    assert inherited == "2"


def test_a_child_started_with_the_capped_environment_uses_at_most_two():
    assert arenas(with_capped_arenas(uncapped()), cap=False)[1] <= 2


def test_a_cap_the_user_set_is_kept_in_children_and_in_the_process_itself():
    mine = {**uncapped(), VARIABLE: "4"}
    assert with_capped_arenas(mine)[VARIABLE] == "4"
    capped, count, inherited = arenas(mine, cap=True)
    assert not capped
    assert 2 < count <= 4
    assert inherited == "4"
