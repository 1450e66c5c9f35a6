"""How hard a provider may be pushed: concurrent jobs and submits per minute, enforced inside one process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pydantic import BaseModel, Field

from cutroom import stopping


class Limits(BaseModel):
    concurrency: int | None = Field(default=None, ge=1, description="Jobs in flight at once; None: no cap.")
    per_minute: float | None = Field(default=None, gt=0, description="Job submissions per minute.")
    unverified: bool = Field(default=False, description="Our guess, not a number the vendor publishes.")
    source: str = ""


class Throttle:
    """A semaphore for jobs in flight and a token bucket for submissions, shared by a process's threads."""

    def __init__(
        self,
        limits: Limits,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = stopping.sleep,
    ):
        self.limits = limits
        self._slots = threading.BoundedSemaphore(limits.concurrency) if limits.concurrency else None
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        burst = max(1.0, (limits.per_minute or 0) / 6)  # up to ten seconds' worth at once
        self._capacity = self._tokens = burst
        self._refilled = clock()

    @contextmanager
    def job(self) -> Iterator[None]:
        """Hold one of the provider's job slots from submit until the job is seen to end (its download takes
        none); a wait for one ends when the run is stopped (Stopped)."""
        if self._slots is None:
            yield
            return
        with stopping.holding(self._slots, "a job slot"):
            yield

    def before_submit(self) -> None:
        """Wait until the submission rate allows one more (a stopped run stops waiting: Stopped)."""
        if not self.limits.per_minute:
            return
        rate = self.limits.per_minute / 60.0
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self._capacity, self._tokens + (now - self._refilled) * rate)
                self._refilled = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                wait = (1 - self._tokens) / rate
            self._sleep(wait)
