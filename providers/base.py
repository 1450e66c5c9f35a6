"""The provider seam: one narrow protocol every vendor adapter and local renderer speaks."""

from __future__ import annotations

import email.utils
import functools
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import httpx
from pydantic import BaseModel, Field

from cutroom.assets import AssetSpec, Score, WordTiming
from cutroom.brief import Brand, Brief
from cutroom.plan import Plan
from providers import callbacks
from providers.callbacks import CallbackNews


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


@functools.cache
def _downloads() -> httpx.Client:
    """One client for every output download of the process (httpx clients are thread-safe): a client per
    download would load the CA bundle again each time, ~20 ms of CPU, and open a new connection."""
    return httpx.Client(follow_redirects=True)


def download_output(
    url: str, provider: str, http: httpx.Client | None = None, timeout: float = 120.0
) -> tuple[bytes, str]:
    """Fetch a finished job's output at once (vendor links expire): its bytes and MIME type.

    A dropped connection or a 5xx is transient (the caller waits and repeats it); an expired link is not_found.
    """
    try:
        response = (http or _downloads()).get(url, timeout=timeout, follow_redirects=True)
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


#: With callbacks on, the first scheduled look comes at this share of the expected latency: by then ~95 % of
#: jobs have ended (lognormal spread, sigma 0.25) and their news has woken us, so the look only catches a lost
#: callback.
SAFETY_NET_FIRST_SHARE = 1.5


class PollSchedule(BaseModel):
    """When to look at a job: first near its expected latency, then backing off, never faster than allowed."""

    expected_s: float = Field(default=1.0, ge=0, description="Typical running time of the model.")
    min_interval_s: float = Field(default=0.0, ge=0, description="The vendor's minimum time between polls.")
    max_interval_s: float = Field(
        default=15.0,
        gt=0,
        description="The longest wait between looks, also when progress predicts a later end.",
    )
    backoff: float = 1.5
    timeout_s: float = 1800.0
    first_share: float = Field(
        default=0.8,
        gt=0,
        description="When the first look comes, as a share of expected_s: late, so a blind look mostly finds "
        "the job done; earlier for a vendor that reports progress, whose reading then predicts the end.",
    )

    def first(self) -> float:
        return max(self.min_interval_s, self.first_share * self.expected_s)

    def next(self, previous: float, waited: float) -> float:
        """After a job outran its first look, check in steps that grow but stay near a tenth of its age."""
        if not previous:
            return self.first()
        step = max(previous * self.backoff, 0.1 * self.expected_s)
        step = min(step, self.max_interval_s, max(0.1 * waited, 0.1 * self.expected_s, self.min_interval_s))
        return max(step, self.min_interval_s)

    def toward(self, look_in: float) -> float:
        """The wait before the next look at a job predicted to be done in `look_in` seconds: then, but never
        sooner than the vendor allows nor than the backoff's smallest step (a tenth of the expected latency), so
        a progress crawling near its end cannot make us poll in a loop. A farther end is approached in even
        steps of at most max_interval_s: a progress that misleads costs looks rather than lag, and no step
        lands just before the end (leaving the job to finish inside the min interval before the next look)."""
        steps = max(1, math.ceil(look_in / self.max_interval_s))
        return max(self.min_interval_s, 0.1 * self.expected_s, look_in / steps)

    def safety_net(self) -> PollSchedule:
        """The looks still scheduled when the vendor calls back: late and sparse, only for news that got lost."""
        return self.model_copy(update={"first_share": max(self.first_share, SAFETY_NET_FIRST_SHARE)})


#: A look predicted from progress comes this share of the job's predicted run after its predicted end: a look
#: that comes early costs a whole min interval of lag, one that comes late only its lateness. 3 % covers the
#: timing noise of a reading (the poll's round trip, progress rounded to 0.001) at half way.
FINISH_MARGIN = 0.03


class Forecast:
    """When a running job will end, from the progress (0..1) its vendor reports on each poll.

    With one reading, the job is taken to have run at a steady pace since it was submitted: it ends at
    submit + elapsed / progress. That needs no second poll, which is what keeps most jobs at two looks (one
    reading, one that finds it done). It overstates the run of a job that sat queued before it started (Runway's
    THROTTLED), which only makes the next look an early one. From two readings on, the rate between the last
    two decides: it ignores time spent queued and follows a vendor whose progress is not linear in time.
    """

    def __init__(self, submitted: float):
        self.submitted = submitted
        self.readings: list[tuple[float, float]] = []

    def add(self, at: float, status: JobStatus) -> None:
        """Keep a poll's reading (taken at `at`) when it is a running job's progress strictly inside (0, 1)."""
        progress = status.progress
        if status.state is JobState.RUNNING and progress is not None and 0 < progress < 1:
            self.readings.append((at, progress))

    def look_in(self, now: float) -> float | None:
        """Seconds from `now` to a look just after the predicted end; None without a usable reading."""
        if not self.readings:
            return None
        at, progress = self.readings[-1]
        if len(self.readings) > 1 and progress > self.readings[-2][1]:
            before, earlier = self.readings[-2]
            end = at + (1 - progress) * (at - before) / (progress - earlier)
        else:
            end = self.submitted + (at - self.submitted) / progress
        return end + FINISH_MARGIN * (end - self.submitted) - now


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
    clock: Callable[[], float] = time.monotonic,
) -> Output:
    """Wait for a submitted job and fetch its output; a job that ends without one raises JobFailed (with its
    error_kind, else generation_failed).

    The first look comes near the model's expected latency (or after `first_look_s`: 0 for a job re-attached
    after a restart). After a look that reads the job's progress the next comes just after the end it predicts
    (Forecast); without one, on the schedule's backoff. A generator whose vendor calls back (CallbackWoken)
    is looked at when news of the job's end arrives, the schedule becoming a late safety net for lost news.
    A poll or download that fails transiently (rate limited, a 5xx, a dropped connection) is waited out and
    repeated: the job is never resubmitted from here, so a hiccup after the vendor accepted it cannot pay for
    the generation twice. `sleep` and `clock` pace and time the waits (a test passes a fake pair).
    """
    schedule = schedule or getattr(generator, "schedule", None) or PollSchedule()
    since_submit = max(0.0, (datetime.now(UTC) - job.submitted_at).total_seconds())
    forecast = Forecast(submitted=clock() - since_submit)
    with _news_of(generator, job) as news:
        if news is not None:
            schedule = schedule.safety_net()
        until = _Wait(sleep, clock, news, schedule.min_interval_s)
        interval = schedule.first() if first_look_s is None else first_look_s
        left, waited = interval, 0.0  # left: of the wait for the next scheduled look
        while True:
            if left:
                slept, woken = until(left)
                waited += slept
                left = max(0.0, left - slept) if woken else 0.0
            asked = clock()
            try:
                status = generator.poll(job)
                if status.state is JobState.SUCCEEDED:
                    output = generator.fetch(job)
                    return output.model_copy(update={"job_id": job.job_id if job.durable else None})
            except ProviderError as exc:
                if not exc.kind.transient or waited >= schedule.timeout_s:
                    raise
                pause = max(exc.retry_after or 0.0, schedule.min_interval_s, 1.0)
                sleep(pause)  # not cut short by news: the vendor asked for this pause
                waited += pause
                left = 0.0
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
            # The vendor read the progress somewhere in the poll's round trip: its middle is the best guess.
            forecast.add((asked + clock()) / 2, status)
            look_in = forecast.look_in(clock())
            if look_in is not None:
                interval = left = schedule.toward(look_in)
            elif not left:
                interval = left = schedule.next(interval, waited)
            # else news woke us early and the poll did not bear it out: the scheduled look stands.


@runtime_checkable
class CallbackWoken(Protocol):
    """A generator whose vendor posts news of its jobs to a URL (providers.callbacks)."""

    name: str

    @property
    def callback_url(self) -> str | None:
        """Where the vendor posts; None when callbacks are not configured."""
        ...

    def callback_news(self, body: Any) -> CallbackNews | None:
        """A posted body's news, or None when it is not this vendor's."""
        ...


@contextmanager
def _news_of(generator: Generator, job: JobRef) -> Iterator[threading.Event | None]:
    """An event set when news comes that the job ended; None when its vendor does not call back here."""
    receiver = None
    if isinstance(generator, CallbackWoken) and (url := generator.callback_url):
        receiver = callbacks.listen(url, generator.name, generator.callback_news)
    if receiver is None:
        yield None
        return
    with receiver.watching(job.job_id) as news:
        yield news


class _Wait:
    """Waits until the next scheduled look, or until news of the job arrives, whichever comes first."""

    def __init__(
        self,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        news: threading.Event | None,
        min_interval_s: float,
    ):
        self.sleep, self.clock, self.news, self.min_interval_s = sleep, clock, news, min_interval_s

    def __call__(self, seconds: float) -> tuple[float, bool]:
        """Wait up to `seconds`: how long it waited, and whether news cut the wait short. News never cuts a
        wait under the vendor's min interval, so forged posts cannot make us poll faster than allowed."""
        if self.news is None:
            self.sleep(seconds)
            return seconds, False
        started = self.clock()
        woken = self.news.wait(seconds)
        if woken and (rest := self.min_interval_s - (self.clock() - started)) > 0:
            self.sleep(rest)
        # Cleared before the poll that follows, which then sees at least the state this news reported.
        self.news.clear()
        return self.clock() - started, woken


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
