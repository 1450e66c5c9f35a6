"""The provider seam: one narrow protocol every vendor adapter and local renderer speaks."""

from __future__ import annotations

import email.utils
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Protocol, runtime_checkable

import httpx
from pydantic import BaseModel, Field

from cutroom.assets import AssetSpec, Score, WordTiming
from cutroom.brief import Brand, Brief
from cutroom.plan import Plan


class Capability(StrEnum):
    planner = "planner"
    image = "image"
    video = "video"
    speech = "speech"
    judge = "judge"


class JobState(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class ErrorKind(StrEnum):
    auth = "auth"
    insufficient_credits = "insufficient_credits"
    rate_limited = "rate_limited"
    invalid_input = "invalid_input"
    moderation_input = "moderation_input"
    moderation_output = "moderation_output"
    generation_failed = "generation_failed"
    not_found = "not_found"
    not_configured = "not_configured"

    @property
    def transient(self) -> bool:
        """Only these are worth retrying as they are; the rest need a different input or a human."""
        return self in (ErrorKind.rate_limited, ErrorKind.generation_failed)


class ProviderError(Exception):
    def __init__(
        self, kind: ErrorKind, message: str, *, provider: str = "", retry_after: float | None = None
    ):
        self.kind = kind
        self.provider = provider
        self.retry_after = retry_after
        self.detail = message
        super().__init__(f"{provider or 'provider'}: {kind.value}: {message}")


class JobRef(BaseModel):
    provider: str
    job_id: str
    spec_key: str
    durable: bool = Field(
        default=True, description="False for in-process jobs: nothing to re-attach to or chain from."
    )
    submitted_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    spec: AssetSpec | None = Field(
        default=None,
        description="What was asked, for a job taken up again by a process that did not submit it.",
    )


class JobStatus(BaseModel):
    state: JobState
    progress: float | None = None
    error: str | None = None
    error_kind: ErrorKind | None = Field(
        default=None, description="Why a FAILED job failed, when the vendor says (moderation vs transient)."
    )


class Output(BaseModel):
    """Media bytes fetched from a finished job, with what we know about them."""

    data: bytes
    mime: str
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    words: list[WordTiming] = Field(default_factory=list)
    cost_usd: float = 0.0
    job_id: str | None = None
    source_url: str | None = Field(default=None, description="The provider's own link to the output.")


@runtime_checkable
class Generator(Protocol):
    """An image, video or speech provider."""

    name: str
    capability: Capability

    def estimate(self, spec: AssetSpec) -> float: ...
    def submit(self, spec: AssetSpec) -> JobRef: ...
    def poll(self, job: JobRef) -> JobStatus: ...
    def fetch(self, job: JobRef) -> Output: ...


class Planner(Protocol):
    name: str

    def plan(self, brief: Brief) -> Plan: ...


class Judge(Protocol):
    name: str

    def score(self, media: Path, spec: AssetSpec, brand: Brand) -> Score: ...


#: What a vendor answers for an output link that has expired or been taken down.
GONE_STATUSES = frozenset({401, 403, 404, 410})


def download_output(
    url: str, provider: str, http: httpx.Client | None = None, timeout: float = 120.0
) -> tuple[bytes, str]:
    """Fetch a finished job's output at once (vendor links expire): its bytes and MIME type.

    A dropped connection or a 5xx is transient (the caller waits and repeats it); an expired link is not_found.
    """
    try:
        response = (http or httpx).get(url, timeout=timeout, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise ProviderError(
            ErrorKind.generation_failed, f"downloading {url}: {exc}", provider=provider
        ) from exc
    if response.status_code in GONE_STATUSES:
        raise ProviderError(
            ErrorKind.not_found,
            f"output URL expired or gone (HTTP {response.status_code}): {url}",
            provider=provider,
        )
    if response.is_error:
        raise ProviderError(
            ErrorKind.generation_failed, f"downloading {url}: HTTP {response.status_code}", provider=provider
        )
    return response.content, response.headers.get("content-type", "application/octet-stream").split(";")[0]


def retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait from `retry-after-ms` or `Retry-After` (seconds or an HTTP date)."""
    if (ms := response.headers.get("retry-after-ms")) is not None:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class PollSchedule(BaseModel):
    """When to look at a job: first near its expected latency, then backing off, never faster than allowed."""

    expected_s: float = Field(default=1.0, ge=0, description="Typical running time of the model.")
    min_interval_s: float = Field(default=0.0, ge=0, description="The vendor's minimum time between polls.")
    max_interval_s: float = 15.0
    backoff: float = 1.5
    timeout_s: float = 1800.0

    def first(self) -> float:
        return max(self.min_interval_s, 0.8 * self.expected_s)

    def next(self, previous: float, waited: float) -> float:
        """After a job outran its first look, check in steps that grow but stay near a tenth of its age."""
        if not previous:
            return self.first()
        step = max(previous * self.backoff, 0.1 * self.expected_s)
        step = min(step, self.max_interval_s, max(0.1 * waited, 0.1 * self.expected_s, self.min_interval_s))
        return max(step, self.min_interval_s)


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


class JobFailed(ProviderError):
    """The vendor ended the job without an output (failed, refused, cancelled): vendors do not bill these."""


def run_job(
    generator: Generator,
    spec: AssetSpec,
    *,
    schedule: PollSchedule | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Output:
    """Submit once, wait on the schedule, fetch."""
    return wait_for(generator, submit_job(generator, spec, sleep), schedule=schedule, sleep=sleep)


def wait_for(
    generator: Generator,
    job: JobRef,
    *,
    schedule: PollSchedule | None = None,
    sleep: Callable[[float], None] = time.sleep,
    first_look_s: float | None = None,
) -> Output:
    """Wait for a submitted job and fetch its output; a job that ends without one raises JobFailed (with its
    error_kind, else generation_failed).

    The first look comes near the model's expected latency (or after `first_look_s`: 0 for a job re-attached
    after a restart). A poll or download that fails transiently (rate limited, a 5xx, a dropped connection)
    is waited out and repeated: the job is never resubmitted from here, so a hiccup after the vendor accepted
    it cannot pay for the generation twice.
    """
    schedule = schedule or getattr(generator, "schedule", None) or PollSchedule()
    interval = waited = schedule.first() if first_look_s is None else first_look_s
    if interval:
        sleep(interval)
    while True:
        try:
            status = generator.poll(job)
            if status.state is JobState.SUCCEEDED:
                return generator.fetch(job).model_copy(update={"job_id": job.job_id if job.durable else None})
        except ProviderError as exc:
            if not exc.kind.transient or waited >= schedule.timeout_s:
                raise
            pause = max(exc.retry_after or 0.0, schedule.min_interval_s, 1.0)
            sleep(pause)
            waited += pause
            continue
        if status.state.terminal:
            raise JobFailed(
                status.error_kind or ErrorKind.generation_failed,
                status.error or status.state.value,
                provider=generator.name,
            )
        if waited >= schedule.timeout_s:
            raise ProviderError(
                ErrorKind.generation_failed,
                f"no result after {schedule.timeout_s:.0f}s",
                provider=generator.name,
            )
        interval = schedule.next(interval, waited)
        sleep(interval)
        waited += interval


#: A rate-limited submit was refused by the vendor, so sending it again cannot pay twice.
SUBMIT_ATTEMPTS_WHEN_RATE_LIMITED = 6


def submit_job(generator: Generator, spec: AssetSpec, sleep: Callable[[float], None] = time.sleep) -> JobRef:
    """Submit, waiting out 429s (Retry-After, else a doubling pause); any other error is the caller's."""
    pause = 1.0
    for _ in range(SUBMIT_ATTEMPTS_WHEN_RATE_LIMITED - 1):
        try:
            return generator.submit(spec)
        except ProviderError as exc:
            if exc.kind is not ErrorKind.rate_limited:
                raise
            sleep(exc.retry_after if exc.retry_after is not None else pause)
            pause = min(pause * 2, 30.0)
    return generator.submit(spec)
