"""Providers whose work is done inside submit: local renderers, and the base of sync vendor APIs."""

from __future__ import annotations

import uuid

from cutroom.assets import AssetSpec
from cutroom.capabilities import Capability
from providers.errors import ErrorKind, ProviderError
from providers.polling import PollSchedule
from providers.protocol import JobRef, JobState, JobStatus, Output


class SyncGenerator:
    """Base for providers whose work finishes inside submit (local renderers, sync vendor APIs)."""

    name: str = ""
    capability: Capability
    model: str = ""
    #: The job is done when submit returns: look at once.
    schedule = PollSchedule(expected_s=0.0)

    def __init__(self) -> None:
        self._done: dict[str, Output] = {}

    def render(self, spec: AssetSpec) -> Output:
        raise NotImplementedError

    def estimate(self, spec: AssetSpec) -> float:
        return 0.0

    def submit(self, spec: AssetSpec) -> JobRef:
        job = JobRef(provider=self.name, job_id=uuid.uuid4().hex, spec_key=spec.key(), durable=False)
        self._done[job.job_id] = self.render(spec)
        return job

    def poll(self, job: JobRef) -> JobStatus:
        if job.job_id not in self._done:
            raise ProviderError(ErrorKind.not_found, f"no job {job.job_id}", provider=self.name)
        return JobStatus(state=JobState.SUCCEEDED, progress=1.0)

    def fetch(self, job: JobRef) -> Output:
        try:
            return self._done.pop(job.job_id)
        except KeyError:
            raise ProviderError(ErrorKind.not_found, f"no job {job.job_id}", provider=self.name) from None
