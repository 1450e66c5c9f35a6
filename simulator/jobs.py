"""A vendor job on the simulator's clock: queued, then running with progress, then the outcome its fault decides.

Vendor modules map a job's Phase onto their own state strings (Luma `dreaming`, BFL `Pending`, Replicate
`processing` …); the clock, the latency draw and the job log live here once.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from simulator.core import Fault, Simulator

#: Faults that decide how a job ends (the transport faults are the frame's, on any request).
JOB_FAULTS = (Fault.failed, Fault.moderation, Fault.moderation_output, Fault.expired)


class Phase(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    moderated_input = "moderated_input"
    moderated_output = "moderated_output"
    cancelled = "cancelled"

    @property
    def ended(self) -> bool:
        return self not in (Phase.queued, Phase.running)


#: How each job fault ends a job.
_ENDINGS = {
    Fault.failed: Phase.failed,
    Fault.moderation: Phase.moderated_input,
    Fault.moderation_output: Phase.moderated_output,
}


@dataclass
class SimJob:
    """One job. Times are time.monotonic(); `request` is the body the vendor was sent."""

    id: str
    created: float
    latency: float
    fault: Fault | None = None
    request: dict[str, Any] = field(default_factory=dict)
    queued_share: float = 0.1
    cancelled_at: float | None = None

    @property
    def ends(self) -> float:
        return self.created + self.latency

    def phase(self, now: float | None = None) -> Phase:
        now = time.monotonic() if now is None else now
        if self.cancelled_at is not None and self.cancelled_at < self.ends:
            return Phase.cancelled
        elapsed = now - self.created
        if elapsed < self.queued_share * self.latency:
            return Phase.queued
        if elapsed < self.latency:
            return Phase.running
        return _ENDINGS.get(self.fault, Phase.succeeded) if self.fault else Phase.succeeded

    def progress(self, now: float | None = None) -> float:
        """0 → 1 over the running part of the job."""
        now = time.monotonic() if now is None else now
        start = self.created + self.queued_share * self.latency
        running = self.latency - self.queued_share * self.latency
        if running <= 0:
            return 1.0
        return min(1.0, max(0.0, (now - start) / running))

    def output_expired(self, sim: Simulator, now: float | None = None) -> bool:
        """Whether a finished job's output link has stopped working (the expired fault, or its age)."""
        now = time.monotonic() if now is None else now
        return self.fault is Fault.expired or now - self.ends > sim.config.output_ttl_s


def start_job(
    sim: Simulator,
    vendor: str,
    mean_latency_s: float,
    request: dict[str, Any] | None = None,
    *,
    faults: tuple[Fault, ...] = JOB_FAULTS,
    job_id: str | None = None,
    queued_share: float = 0.1,
) -> SimJob:
    """A new job with a drawn latency and outcome, logged for /_sim/jobs."""
    job = SimJob(
        id=job_id or str(uuid.uuid4()),
        created=time.monotonic(),
        latency=sim.latency(mean_latency_s),
        fault=sim.draw(*faults),
        request=dict(request or {}),
        queued_share=queued_share,
    )
    # The job log is on the request log's wall clock.
    created = time.time() - (time.monotonic() - job.created)
    sim.record_job(vendor, job.id, created, created + job.latency)
    return job
