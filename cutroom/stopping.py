"""Stopping a run: one process-wide event every wait of a run waits on, so SIGINT/SIGTERM end it in seconds.

The CLI sets it when a signal comes (cli/stopping.py). From then on every interruptible wait — a poll's pause,
an S3 back-off, a wait for a vendor or render slot — raises Stopped at once instead of sleeping on, and no new
paid job is submitted. Nothing is undone: a vendor job already submitted stays journaled in the ledger, so the
same command run again re-attaches to it instead of paying twice.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

#: How often a wait for a slot (a semaphore cannot be woken) looks whether the run was stopped.
SLOT_CHECK_S = 0.2

_stop = threading.Event()
_lock = threading.Lock()
_why = ""
_wake: set[threading.Event] = set()


class Stopped(Exception):
    """The run was asked to stop (SIGINT/SIGTERM): what was under way is left as journaled, not failed."""


class Acquirable(Protocol):
    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool: ...
    def release(self) -> None: ...


def request(why: str) -> None:
    """Stop the run: wake every interruptible wait, which then raises Stopped."""
    global _why
    with _lock:
        _why = _why or why
        _stop.set()
        for event in _wake:
            event.set()


def requested() -> bool:
    return _stop.is_set()


def check(doing: str = "") -> None:
    """Raise Stopped if the run was asked to stop; `doing` says what is then left undone."""
    if _stop.is_set():
        raise Stopped(f"{_why or 'stopped'}{f': {doing} left undone' if doing else ''}")


def sleep(seconds: float) -> None:
    """time.sleep that ends at once, raising Stopped, when the run is asked to stop."""
    if _stop.wait(max(0.0, seconds)):
        check()


@contextmanager
def waking(event: threading.Event) -> Iterator[threading.Event]:
    """Have a stop set `event` too, so a wait on it (a vendor's news) also ends when the run stops."""
    with _lock:
        _wake.add(event)
        if _stop.is_set():
            event.set()
    try:
        yield event
    finally:
        with _lock:
            _wake.discard(event)


@contextmanager
def holding(slot: Acquirable, what: str) -> Iterator[None]:
    """Hold a semaphore (a vendor's job slot, a render slot), waiting for it only while the run goes on."""
    check(f"waiting for {what}")
    while not slot.acquire(timeout=SLOT_CHECK_S):
        check(f"waiting for {what}")
    try:
        yield
    finally:
        slot.release()


def reset() -> None:
    """Forget a stop (tests, and a process that runs again after one)."""
    global _why
    with _lock:
        _why = ""
        _stop.clear()
