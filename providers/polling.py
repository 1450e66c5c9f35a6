"""Waiting for a submitted job: submit once, look near its expected end (or when its vendor calls back),
predict the end from its progress, fetch."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from cutroom import stopping
from cutroom.assets import AssetSpec
from providers import callbacks
from providers.errors import ErrorKind, JobFailed, ProviderError
from providers.protocol import CallbackWoken, Generator, JobRef, JobState, JobStatus, Output

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
    retry_pause_s: float = Field(
        default=1.0, ge=0, description="The least wait after a poll or download failed transiently."
    )
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

    With one reading, the job is taken to have run at a steady pace since it was last seen queued (a look that
    found it PENDING: BFL's Pending without progress, Runway's THROTTLED), else since it was submitted: it ends
    at start + elapsed / progress. That needs no second poll, which is what keeps most jobs at two looks (one
    reading, one that finds it done). Time queued after that start still counts as running, so the forecast is
    late by the queued time × (1 / progress - 1): the look never comes early, and a later reading shrinks the
    error. From two readings on, the rate between the last two decides: it ignores time spent queued and follows
    a vendor whose progress is not linear in time.
    """

    def __init__(self, submitted: float):
        #: The job started no earlier than this: its submit, or the last look that saw it still queued.
        self.started_after = submitted
        self.readings: list[tuple[float, float]] = []

    def add(self, at: float, status: JobStatus) -> None:
        """Keep a poll's reading (taken at `at`) when it is a running job's progress strictly inside (0, 1); a
        look before any reading that saw the job queued moves its earliest start to `at`."""
        progress = status.progress
        if status.state is JobState.RUNNING and progress is not None and 0 < progress < 1:
            self.readings.append((at, progress))
        elif status.state is JobState.PENDING and not self.readings:
            self.started_after = at

    def look_in(self, now: float) -> float | None:
        """Seconds from `now` to a look just after the predicted end; None without a usable reading."""
        if not self.readings:
            return None
        at, progress = self.readings[-1]
        if len(self.readings) > 1 and progress > self.readings[-2][1]:
            before, earlier = self.readings[-2]
            end = at + (1 - progress) * (at - before) / (progress - earlier)
        else:
            end = self.started_after + (at - self.started_after) / progress
        return end + FINISH_MARGIN * (end - self.started_after) - now


def run_job(
    generator: Generator,
    spec: AssetSpec,
    *,
    schedule: PollSchedule | None = None,
    sleep: Callable[[float], None] = stopping.sleep,
) -> Output:
    """Submit once, wait on the schedule, fetch."""
    return wait_for(generator, submit_job(generator, spec, sleep), schedule=schedule, sleep=sleep)


#: A poll or download failing this many times in a row (a link that keeps failing, a vendor that is down) ends
#: the wait: the job stays journaled, so a later run re-attaches to it.
MAX_FAILURES_IN_A_ROW = 10
#: ... or this many times in all, good looks between them or not: a vendor that fails every other look.
MAX_FAILURES = 3 * MAX_FAILURES_IN_A_ROW
#: The longest pause after a failed look, whatever Retry-After asks: longer is a vendor that is away.
MAX_RETRY_PAUSE_S = 60.0


class GaveUp(ProviderError):
    """A wait that ran to its bounds (failed looks, a timeout, a slot that never came free), saying what it
    gave up on. The task does not retry it: it would wait the same way again. A job it waited on may still be
    the vendor's, so it stays journaled for a rerun to re-attach to."""


def _schedule_of(generator: Generator, job: JobRef) -> PollSchedule:
    """The schedule of the job's own model where the generator knows it, else the generator's."""
    schedule_of = getattr(generator, "schedule_of", None)
    if schedule_of is not None and job.spec is not None and job.spec.model:
        try:
            return schedule_of(job.spec.model)
        except ProviderError:
            pass  # a model its vendor does not know is refused at the vendor; poll on the default meanwhile
    return getattr(generator, "schedule", None) or PollSchedule()


def wait_for(
    generator: Generator,
    job: JobRef,
    *,
    schedule: PollSchedule | None = None,
    sleep: Callable[[float], None] = stopping.sleep,
    first_look_s: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Output:
    """Wait for a submitted job to end (wait_for_end), then fetch its output (fetch_output)."""
    schedule = schedule or _schedule_of(generator, job)
    wait_for_end(generator, job, schedule=schedule, sleep=sleep, first_look_s=first_look_s, clock=clock)
    return fetch_output(generator, job, schedule=schedule, sleep=sleep, clock=clock)


def wait_for_end(
    generator: Generator,
    job: JobRef,
    *,
    schedule: PollSchedule | None = None,
    sleep: Callable[[float], None] = stopping.sleep,
    first_look_s: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Wait until a submitted job has succeeded; a job that ends without success raises JobFailed (with its
    error_kind, else generation_failed). Its output is not fetched: that is fetch_output's, which needs no
    vendor slot, so a caller gives the slot back in between.

    The first look comes near the model's expected latency (or after `first_look_s`: 0 for a job re-attached
    after a restart). After a look that reads the job's progress the next comes just after the end it predicts
    (Forecast); without one, on the schedule's backoff. A generator whose vendor calls back (CallbackWoken)
    is looked at when news of the job's end arrives, the schedule becoming a late safety net for lost news.
    A poll that fails transiently (rate limited, a 5xx, a dropped connection) is waited out and repeated: the
    job is never resubmitted from here, so a hiccup after the vendor accepted it cannot pay for the generation
    twice. The wait is bounded: MAX_FAILURES_IN_A_ROW failed looks in a row, MAX_FAILURES in all, or the
    schedule's timeout end it with GaveUp, naming the job (still journaled: a rerun re-attaches).
    `sleep` and `clock` pace and time the waits (a test passes a fake pair); the default sleep, and any news
    wait, end at once when the run is stopped (cutroom.stopping), raising Stopped.
    """
    schedule = schedule or _schedule_of(generator, job)
    since_submit = max(0.0, (datetime.now(UTC) - job.submitted_at).total_seconds())
    forecast = Forecast(submitted=clock() - since_submit)
    with _news_of(generator, job) as news:
        if news is not None:
            schedule = schedule.safety_net()
        until = _Wait(sleep, clock, news, schedule.min_interval_s)
        interval = schedule.first() if first_look_s is None else first_look_s
        left, waited = interval, 0.0  # left: of the wait for the next scheduled look
        failures = _Failures(generator, job, schedule, clock, "looks")
        while True:
            if left:
                slept, woken = until(left)
                waited += slept
                left = max(0.0, left - slept) if woken else 0.0
            stopping.check(f"waiting for {generator.name} job {job.job_id}")
            asked = clock()
            try:
                status = generator.poll(job)
            except ProviderError as exc:
                if not exc.kind.transient:
                    raise
                pause = failures.pause_after(exc)
                sleep(pause)  # not cut short by news: the vendor asked for this pause
                waited += pause
                left = 0.0
                continue
            failures.passed()
            if status.state is JobState.SUCCEEDED:
                return
            if status.state.terminal:
                raise JobFailed(
                    status.error_kind or ErrorKind.generation_failed,
                    status.error or status.state.value,
                    provider=generator.name,
                )
            if (why := failures.timed_out()) is not None:
                last = f"it was {status.state.value.lower()}" + (
                    f" at {status.progress:.0%}" if status.progress is not None else ""
                )
                raise _gave_up(generator, job, why, last, ErrorKind.generation_failed)
            # The vendor read the progress somewhere in the poll's round trip: its middle is the best guess.
            forecast.add((asked + clock()) / 2, status)
            look_in = forecast.look_in(clock())
            if look_in is not None:
                interval = left = schedule.toward(look_in)
            elif not left:
                interval = left = schedule.next(interval, waited)
            # else news woke us early and the poll did not bear it out: the scheduled look stands.


def fetch_output(
    generator: Generator,
    job: JobRef,
    *,
    schedule: PollSchedule | None = None,
    sleep: Callable[[float], None] = stopping.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Output:
    """Download a job that has succeeded. The job no longer runs on its vendor, so this needs none of the
    vendor's slots. A download that fails transiently is tried again (an adapter whose link was spent asks its
    vendor for a fresh one) within the same bounds as a wait's looks, then GaveUp, the job still journaled; it is
    never resubmitted from here. A stopped run stops trying (Stopped)."""
    schedule = schedule or _schedule_of(generator, job)
    failures = _Failures(generator, job, schedule, clock, "downloads")
    while True:
        try:
            output = generator.fetch(job)
            return output.model_copy(update={"job_id": job.job_id if job.durable else None})
        except ProviderError as exc:
            if not exc.kind.transient:
                raise
            sleep(failures.pause_after(exc))
        stopping.check(f"downloading {generator.name} job {job.job_id}")


class _Failures:
    """The transient failures of one wait's requests (its looks, or its downloads), counted against the wait's
    bounds, and the pause each asks for."""

    def __init__(
        self, generator: Generator, job: JobRef, schedule: PollSchedule, clock: Callable[[], float], what: str
    ):
        self.generator, self.job, self.schedule, self.clock, self.what = generator, job, schedule, clock, what
        self.in_a_row = self.all = 0
        self.began = clock()

    def pause_after(self, exc: ProviderError) -> float:
        """The pause before trying again after a transient failure; GaveUp once a bound is reached."""
        self.in_a_row, self.all = self.in_a_row + 1, self.all + 1
        why = _bound_reached(
            self.in_a_row, self.all, self.clock() - self.began, self.schedule.timeout_s, self.what
        )
        if why is not None:
            raise _gave_up(self.generator, self.job, why, exc.detail, exc.kind) from exc
        schedule = self.schedule
        pause = max(exc.retry_after or 0.0, schedule.min_interval_s, schedule.retry_pause_s)
        # Never past the timeout, nor longer than a vendor that is merely busy would ask.
        return min(
            pause,
            MAX_RETRY_PAUSE_S,
            max(schedule.timeout_s - (self.clock() - self.began), schedule.min_interval_s),
        )

    def passed(self) -> None:
        """A request that worked: the failures in a row count from zero again."""
        self.in_a_row = 0

    def timed_out(self) -> str | None:
        """The timeout in words once the wait has run to it; None before."""
        return _bound_reached(0, 0, self.clock() - self.began, self.schedule.timeout_s, self.what)


def _bound_reached(in_a_row: int, failures: int, elapsed: float, timeout_s: float, what: str) -> str | None:
    """Which bound of a wait has been reached, in words (`what` failed: looks, downloads); None while the wait
    may go on."""
    if in_a_row >= MAX_FAILURES_IN_A_ROW:
        return f"{in_a_row} failed {what} in a row"
    if failures >= MAX_FAILURES:
        return f"{failures} failed {what}"
    if elapsed >= timeout_s:
        return f"{elapsed:.0f} s without a result (its limit: {timeout_s:.0f} s)"
    return None


def _gave_up(generator: Generator, job: JobRef, after: str, last: str, kind: ErrorKind) -> GaveUp:
    return GaveUp(
        kind,
        f"gave up on job {job.job_id} after {after} (last: {last}); it stays journaled: run the same command "
        "again to pick it up",
        provider=generator.name,
    )


@contextmanager
def _news_of(generator: Generator, job: JobRef) -> Iterator[threading.Event | None]:
    """An event set when news comes that the job ended; None when its vendor does not call back here."""
    receiver = None
    if isinstance(generator, CallbackWoken) and (url := generator.callback_url):
        receiver = callbacks.listen(url, generator.name, generator.callback_news)
    if receiver is None:
        yield None
        return
    with receiver.watching(job.job_id) as news, stopping.waking(news):
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


def submit_job(
    generator: Generator, spec: AssetSpec, sleep: Callable[[float], None] = stopping.sleep
) -> JobRef:
    """Submit, waiting out 429s (Retry-After up to MAX_RETRY_PAUSE_S, else a doubling pause) at most
    SUBMIT_ATTEMPTS_WHEN_RATE_LIMITED times; any other error is the caller's. Nothing is submitted once the
    run is stopped."""
    pause, refused = 1.0, None
    for _ in range(SUBMIT_ATTEMPTS_WHEN_RATE_LIMITED):
        if refused is not None:
            sleep(min(refused.retry_after if refused.retry_after is not None else pause, MAX_RETRY_PAUSE_S))
            pause = min(pause * 2, 30.0)
        stopping.check(f"submitting {spec.kind.value} to {generator.name}")
        try:
            return generator.submit(spec)
        except ProviderError as exc:
            if exc.kind is not ErrorKind.rate_limited:
                raise
            refused = exc
    raise ProviderError(
        refused.kind,
        f"gave up submitting after {SUBMIT_ATTEMPTS_WHEN_RATE_LIMITED} rate-limited tries "
        f"(last: {refused.detail}); nothing was paid for",
        provider=refused.provider or generator.name,
        retry_after=refused.retry_after,
    ) from refused
