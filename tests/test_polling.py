"""How soon a finished vendor job is seen, and at what cost in polls.

Runway reports a running task's progress, from which wait_for predicts the finish; Luma calls back, which
wakes the waiting job for one authoritative poll. The unit tests drive wait_for on a fake clock; the rest run
the real adapters against the simulator with latencies scaled down (and jitter off where the test needs an
exact job time).
"""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from PIL import Image

from cutroom.assets import AssetKind, AssetSpec, InputRef
from cutroom.channels import Aspect
from cutroom.loopback import free_port
from providers import callbacks, declarations, runway
from providers.errors import ErrorKind, ProviderError
from providers.luma import LumaImage
from providers.polling import MAX_FAILURES_IN_A_ROW, PollSchedule, run_job, wait_for
from providers.protocol import JobRef, JobState, JobStatus, Output

if TYPE_CHECKING:
    from tests.simulator_fixture import SimulatorHandle


@pytest.fixture(autouse=True)
def _no_stray_callback_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests that want callbacks set them; nothing leaks in from the environment."""
    monkeypatch.delenv(callbacks.URL_ENV, raising=False)
    monkeypatch.delenv(callbacks.LISTEN_ENV, raising=False)


# ---------------------------------------------------------------------------------------------------------
# The forecast, on a fake clock


class FakeClock:
    """A clock that moves only when something sleeps on it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class FakeJob:
    """A vendor job on the fake clock: queued for `queued_s`, then running for `runs_s`, reporting its progress
    (as `report` maps it) while it runs."""

    name = "fake"

    def __init__(self, clock: FakeClock, runs_s: float, queued_s: float = 0.0, report: Any = lambda p: p):
        self.clock, self.runs_s, self.queued_s, self.report = clock, runs_s, queued_s, report
        self.looks: list[float] = []

    @property
    def ends_at(self) -> float:
        return self.queued_s + self.runs_s

    def poll(self, job: JobRef) -> JobStatus:
        now = self.clock()
        self.looks.append(now)
        if now >= self.ends_at:
            return JobStatus(state=JobState.SUCCEEDED, progress=1.0)
        if now < self.queued_s:
            return JobStatus(state=JobState.PENDING)
        return JobStatus(state=JobState.RUNNING, progress=self.report((now - self.queued_s) / self.runs_s))

    def fetch(self, job: JobRef) -> Output:
        return Output(data=b"clip", mime="video/mp4")

    def submit(self, spec: AssetSpec) -> JobRef:
        raise NotImplementedError

    def estimate(self, spec: AssetSpec) -> float:
        return 0.0


#: Shaped like a vendor's: a 5 s minimum between polls, 20 s the longest wait, jobs expected to take 45 s.
SCHEDULE = PollSchedule(expected_s=45, min_interval_s=5, max_interval_s=20, first_share=0.3)


def _wait(fake: FakeJob, clock: FakeClock, schedule: PollSchedule = SCHEDULE, **options: Any) -> Output:
    job = JobRef(provider="fake", job_id="job-1", spec_key="k")
    return wait_for(fake, job, schedule=schedule, sleep=clock.sleep, clock=clock, **options)


def _lag(fake: FakeJob) -> float:
    """How long after the job ended the look that saw it came, as a share of its time."""
    return (fake.looks[-1] - fake.ends_at) / fake.ends_at


def test_one_progress_reading_puts_the_next_look_just_after_the_predicted_finish() -> None:
    clock = FakeClock()
    fake = FakeJob(clock, runs_s=30)
    _wait(fake, clock)
    # A look at 0.3 x 45 s reads progress 0.45; the next comes just after the 30 s it predicts, and sees it done.
    assert fake.looks[0] == pytest.approx(13.5)
    assert len(fake.looks) == 2
    assert 0 <= _lag(fake) <= 0.05


def test_a_job_that_sat_queued_is_predicted_from_the_rate_between_two_readings() -> None:
    """Elapsed time since submit overstates a queued job's pace; the second reading corrects it."""
    clock = FakeClock()
    fake = FakeJob(clock, runs_s=30, queued_s=10)
    _wait(fake, clock)
    assert len(fake.looks) <= 3
    assert 0 <= _lag(fake) <= 0.05


def test_a_job_seen_queued_then_running_is_seen_done_at_the_look_after_its_first_reading() -> None:
    """Queued 40 s behind others, then a 10 s run: the last look that saw it queued bounds its start, so one
    reading predicts its end (taken from its submit, the look would come ~20 % late)."""
    clock = FakeClock()
    fake = FakeJob(clock, runs_s=10, queued_s=40)
    _wait(fake, clock)
    first_reading = next(i for i, at in enumerate(fake.looks) if at >= fake.queued_s)
    assert len(fake.looks) == first_reading + 2
    assert 0 <= _lag(fake) <= 0.10


def test_a_finish_far_off_is_approached_in_even_steps_none_longer_than_the_max_interval() -> None:
    clock = FakeClock()
    fake = FakeJob(clock, runs_s=100)
    _wait(fake, clock)
    assert max(clock.slept) <= SCHEDULE.max_interval_s
    assert 0 <= _lag(fake) <= 0.05
    assert len(fake.looks) <= 7  # 13.5 s, then ~87 s in steps of at most 20 s


def test_a_forecast_never_looks_sooner_than_the_vendor_allows() -> None:
    clock = FakeClock()
    fake = FakeJob(clock, runs_s=14)  # nearly done at the first look (13.5 s)
    _wait(fake, clock)
    assert min(clock.slept) >= SCHEDULE.min_interval_s
    assert len(fake.looks) == 2


def test_progress_that_lags_the_clock_costs_looks_not_lag() -> None:
    """A vendor whose progress is slow early and fast late: each reading predicts too late a finish, but the
    looks on the way keep reading it, so the job is still seen soon after it ends."""
    clock = FakeClock()
    fake = FakeJob(clock, runs_s=40, report=lambda p: p**2)
    _wait(fake, clock)
    assert max(clock.slept) <= SCHEDULE.max_interval_s
    assert (fake.looks[-1] - fake.ends_at) <= SCHEDULE.max_interval_s


def test_progress_crawling_near_its_end_does_not_make_us_poll_in_a_loop() -> None:
    """Progress that races ahead and then crawls keeps predicting an end just ahead; even on a schedule with no
    vendor minimum, the looks keep a sane pace."""
    clock = FakeClock()
    fake = FakeJob(clock, runs_s=60, report=lambda p: 1 - (1 - p) ** 3)
    unlimited = PollSchedule(expected_s=45, min_interval_s=0, max_interval_s=20, first_share=0.3)
    _wait(fake, clock, unlimited)
    assert min(clock.slept) >= 0.1 * unlimited.expected_s
    assert len(fake.looks) <= 12


class FlakyJob(FakeJob):
    """A job whose status cannot be read at the looks listed (a vendor having a bad minute)."""

    def __init__(self, clock: FakeClock, runs_s: float, failing: set[int]):
        super().__init__(clock, runs_s)
        self.failing = failing

    def poll(self, job: JobRef) -> JobStatus:
        status = super().poll(job)
        if len(self.looks) in self.failing:
            raise ProviderError(ErrorKind.generation_failed, "poll: HTTP 503: busy", provider="fake")
        return status


def test_failing_looks_are_waited_out_and_a_good_one_starts_the_count_again() -> None:
    clock = FakeClock()
    runs_s = 10_000.0  # still running after every look below
    # Nine failures, one good look, nine more: never ten in a row, so the wait goes on to the job's end.
    flaky = FlakyJob(clock, runs_s, failing={*range(1, 10), *range(11, 20)})
    assert _wait(flaky, clock, PollSchedule(expected_s=45, timeout_s=1e6)).mime == "video/mp4"
    assert len(flaky.looks) > 20 and clock.now >= runs_s


def test_a_look_failing_ten_times_in_a_row_ends_the_wait_and_says_so() -> None:
    """A link that keeps failing, a vendor that is down: the wait ends rather than look until the timeout (the
    job stays journaled, so a later run re-attaches to it)."""
    clock = FakeClock()
    flaky = FlakyJob(clock, runs_s=10_000.0, failing=set(range(1, 100)))
    with pytest.raises(ProviderError) as caught:
        _wait(flaky, clock, PollSchedule(expected_s=45, timeout_s=1e6))
    assert len(flaky.looks) == MAX_FAILURES_IN_A_ROW
    assert caught.value.kind is ErrorKind.generation_failed
    assert f"after {MAX_FAILURES_IN_A_ROW} failed looks in a row" in str(caught.value)
    assert "HTTP 503" in str(caught.value)  # the last failure's reason


@pytest.mark.parametrize("progress", [None, 0.0, 1.5, -0.2, math.nan])
def test_without_usable_progress_the_schedule_backs_off_as_before(progress: float | None) -> None:
    clock = FakeClock()
    blind = FakeJob(clock, runs_s=30, report=lambda _: progress)
    _wait(blind, clock)
    backoff, interval = [SCHEDULE.first()], SCHEDULE.first()
    while sum(backoff) < 30:
        interval = SCHEDULE.next(interval, sum(backoff))
        backoff.append(interval)
    assert clock.slept == pytest.approx(backoff)

    clock = FakeClock()
    reporting = FakeJob(clock, runs_s=30)
    _wait(reporting, clock)
    assert len(reporting.looks) < len(blind.looks)


def test_a_reattached_job_is_looked_at_at_once_and_then_by_its_progress() -> None:
    clock = FakeClock()
    clock.now = 20.0  # the job was submitted by a process that is gone; it ends at 30 s
    fake = FakeJob(clock, runs_s=30)
    _wait(fake, clock, first_look_s=0.0)
    assert fake.looks[0] == 20.0
    assert len(fake.looks) <= 3
    assert (fake.looks[-1] - fake.ends_at) <= SCHEDULE.min_interval_s


# ---------------------------------------------------------------------------------------------------------
# Against the simulator


def _polls(sim: SimulatorHandle, job_id: str) -> list[float]:
    """When the vendor's status of this job was read (its media downloads left out)."""
    return [
        r["time"]
        for r in sim.requests()
        if r["method"] == "GET" and r["path"].endswith(job_id) and "/_media/" not in r["path"]
    ]


def _timing(sim: SimulatorHandle, job_id: str) -> dict[str, float]:
    return next(j for j in sim.jobs() if j["id"] == job_id)


def _lag_share(sim: SimulatorHandle, job_id: str) -> float:
    """Detection lag as the benchmark measures it: the last status read minus the finish, over the job's time."""
    timing = _timing(sim, job_id)
    return max(0.0, max(_polls(sim, job_id)) - timing["finished"]) / (timing["finished"] - timing["created"])


RUNWAY_SCALE = 0.05  # gen4_turbo's 30 s in the simulator becomes 1.5 s
RUNWAY = declarations.vendor("runway")


@pytest.fixture
def runway_sim(simulator: SimulatorHandle) -> SimulatorHandle:
    simulator.reset(latency_scale=RUNWAY_SCALE, latency_jitter=0.0, stock_media=True)
    httpx.post(
        f"{simulator.url}/runway/_sim/limits", json={"concurrency": 4, "daily_generations": None}
    ).raise_for_status()
    return simulator


def _gen4_turbo(sim: SimulatorHandle) -> runway.RunwayVideo:
    """The adapter on the simulator's clock, so it polls as it would Runway, 20x faster."""
    prefix, key = RUNWAY.simulator.prefix, RUNWAY.simulator.key  # type: ignore[union-attr]
    return runway.RunwayVideo(
        "gen4_turbo", base_url=f"{sim.url}{prefix}", api_key=key, time_scale=RUNWAY_SCALE
    )


def _runway_spec(tmp_path: Path) -> AssetSpec:
    keyframe = tmp_path / "keyframe.png"
    Image.new("RGB", (320, 180), "#1A2B3C").save(keyframe)
    return AssetSpec(
        kind=AssetKind.video,
        provider="runway",
        model="gen4_turbo",
        prompt="a lighthouse at dusk, slow push in",
        aspect=Aspect.landscape,
        width=1280,
        height=720,
        duration_s=5.0,
        inputs=(InputRef(role="keyframe", uri=keyframe.as_uri(), sha256="x"),),
    )


def _run_all(count: int, work: Any) -> list[Output]:
    """`count` jobs waited on at once, as a campaign's stories wait on theirs."""
    results: list[Any] = [None] * count

    def one(i: int) -> None:
        try:
            results[i] = work()
        except BaseException as exc:  # noqa: BLE001 - handed to the test below
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def test_a_runway_job_is_seen_soon_after_it_ends_in_two_polls(
    runway_sim: SimulatorHandle, tmp_path: Path
) -> None:
    """The card expects 45 s, the simulator's gen4_turbo runs 30 s: progress at the first look says when."""
    generator = _gen4_turbo(runway_sim)
    spec = _runway_spec(tmp_path)
    outputs = _run_all(3, lambda: run_job(generator, spec))
    for out in outputs:
        assert out.mime == "video/mp4" and out.job_id
        assert len(_polls(runway_sim, out.job_id)) == 2
        assert _lag_share(runway_sim, out.job_id) <= 0.10


def test_a_throttled_runway_job_is_still_seen_soon_after_it_ends(
    runway_sim: SimulatorHandle, tmp_path: Path
) -> None:
    """With one slot, the second task waits THROTTLED for the first: its progress is read against its pace."""
    httpx.post(f"{runway_sim.url}/runway/_sim/limits", json={"concurrency": 1}).raise_for_status()
    generator = _gen4_turbo(runway_sim)
    spec = _runway_spec(tmp_path)
    outputs = _run_all(2, lambda: run_job(generator, spec))
    for out in outputs:
        assert out.job_id
        # While it is queued, and in the first tenth of its run that Runway reports PENDING, there is no progress
        # to read: the schedule's backoff looks. Once it runs, two readings and the look that sees it done at most.
        timing = _timing(runway_sim, out.job_id)
        running = timing["started"] + 0.1 * (timing["finished"] - timing["started"])
        assert len([t for t in _polls(runway_sim, out.job_id) if t >= running]) <= 3
        # measured against its whole time, queue included, as a user waits it
        assert _lag_share(runway_sim, out.job_id) <= 0.10


LUMA_SCALE = 0.05  # photon-1's 20 s becomes 1 s
LUMA = declarations.vendor("luma")
#: A woken job is seen within tens of ms (more on a loaded machine); without the callback the first look would
#: come at the safety net, 1.5 × the expected time: a lag of ~50 %.
LUMA_WOKEN_LAG = 0.25


@pytest.fixture
def luma_sim(simulator: SimulatorHandle) -> SimulatorHandle:
    simulator.reset(latency_scale=LUMA_SCALE, latency_jitter=0.0)
    return simulator


@pytest.fixture
def callback_url(monkeypatch: pytest.MonkeyPatch) -> str:
    """Callbacks configured as a user would, on a loopback port of their own."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/cutroom/callbacks"
    monkeypatch.setenv(callbacks.URL_ENV, url)
    monkeypatch.setenv(callbacks.LISTEN_ENV, f"127.0.0.1:{port}")
    return url


def _photon(sim: SimulatorHandle) -> LumaImage:
    prefix, key = LUMA.simulator.prefix, LUMA.simulator.key  # type: ignore[union-attr]
    return LumaImage("photon-1", base_url=f"{sim.url}{prefix}", api_key=key, time_scale=LUMA_SCALE)


def _image_spec(prompt: str = "a lighthouse at dusk") -> AssetSpec:
    return AssetSpec(kind=AssetKind.image, provider="luma", model="photon-1", prompt=prompt)


def test_with_a_callback_url_a_luma_job_is_seen_as_soon_as_it_ends(
    luma_sim: SimulatorHandle, callback_url: str
) -> None:
    adapter = _photon(luma_sim)
    outputs = _run_all(3, lambda: run_job(adapter, _image_spec()))
    for out in outputs:
        assert out.mime.startswith("image/") and out.job_id
        assert 1 <= len(_polls(luma_sim, out.job_id)) <= 2
        assert _lag_share(luma_sim, out.job_id) <= LUMA_WOKEN_LAG


def test_when_callbacks_are_lost_polling_still_finishes_the_job(
    luma_sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The vendor posts to a dead port (a proxy down, a firewall): the sparse scheduled looks find the job."""
    monkeypatch.setenv(callbacks.URL_ENV, f"http://127.0.0.1:{free_port()}/lost")
    monkeypatch.setenv(callbacks.LISTEN_ENV, f"127.0.0.1:{free_port()}")
    adapter = _photon(luma_sim)
    out = run_job(adapter, _image_spec())
    assert out.mime.startswith("image/") and out.job_id
    polls = _polls(luma_sim, out.job_id)
    timing = _timing(luma_sim, out.job_id)
    assert polls[0] - timing["created"] >= adapter.schedule.expected_s  # a safety net, not the usual looks
    assert max(polls) >= timing["finished"]


def test_news_that_arrives_before_the_wait_begins_is_not_lost(
    luma_sim: SimulatorHandle, callback_url: str
) -> None:
    adapter = _photon(luma_sim)
    job = adapter.submit(_image_spec())
    deadline = time.monotonic() + 10
    while time.time() < _timing(luma_sim, job.job_id)["finished"] + 0.2:  # ended, and its callback sent
        assert time.monotonic() < deadline
        time.sleep(0.05)
    started = time.monotonic()
    out = wait_for(adapter, job)
    assert time.monotonic() - started < 0.5 * adapter.schedule.expected_s  # not left to the safety net
    assert out.mime.startswith("image/")
    assert len(_polls(luma_sim, job.job_id)) == 1


def test_a_reattached_luma_job_is_looked_at_at_once_then_woken_by_its_callback(
    luma_sim: SimulatorHandle, callback_url: str
) -> None:
    adapter = _photon(luma_sim)
    job = adapter.submit(_image_spec())
    reattached = JobRef(provider="luma", job_id=job.job_id, spec_key=job.spec_key)
    out = wait_for(_photon(luma_sim), reattached, first_look_s=0.0)  # a new process's adapter
    assert out.mime.startswith("image/")
    assert len(_polls(luma_sim, job.job_id)) == 2
    assert _lag_share(luma_sim, job.job_id) <= LUMA_WOKEN_LAG


def _post(url: str, body: Any) -> int:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(url, content=content, headers={"content-type": "application/json"}).status_code


def _raw_post(url: str, body: bytes, declared: int) -> int:
    """A POST whose Content-Length claims `declared` bytes (which httpx will not send); its status."""
    parts = httpx.URL(url)
    with socket.create_connection((parts.host, parts.port), timeout=5) as conn:
        head = f"POST {parts.path} HTTP/1.1\r\nHost: {parts.host}\r\nContent-Length: {declared}\r\n\r\n"
        conn.sendall(head.encode() + body)
        return int(conn.recv(1024).split()[1])


def test_a_forged_completed_callback_for_a_running_job_costs_one_poll_and_nothing_else(
    luma_sim: SimulatorHandle, callback_url: str
) -> None:
    """Callbacks are unsigned: one claiming the job is done only makes us ask Luma, and its asset URL is never
    fetched."""
    adapter = _photon(luma_sim)
    job = adapter.submit(_image_spec())
    waiting = threading.Thread(target=lambda: setattr(waiting, "out", wait_for(adapter, job)))
    waiting.start()
    time.sleep(0.2 * adapter.schedule.expected_s)
    bait = f"http://127.0.0.1:{free_port()}/evil.jpg"
    forged = {"id": job.job_id, "state": "completed", "assets": {"image": bait, "video": None}}
    assert _post(callback_url, forged) == 200
    waiting.join(timeout=10)

    out: Output = waiting.out  # type: ignore[attr-defined]
    assert out.source_url and out.source_url != bait  # the real asset, from Luma's own answer
    polls, finished = _polls(luma_sim, job.job_id), _timing(luma_sim, job.job_id)["finished"]
    assert len(polls) == 2 and polls[0] < finished  # the forged news cost one early look
    downloads = [r for r in luma_sim.requests() if "/_media/" in r["path"]]
    assert all(r["time"] >= finished for r in downloads)  # nothing fetched before the job was done


def test_bogus_posts_are_refused_and_unknown_jobs_ignored(
    luma_sim: SimulatorHandle, callback_url: str
) -> None:
    adapter = _photon(luma_sim)
    job = adapter.submit(_image_spec())  # starts the receiver
    assert _post(callback_url, b"not json") == 400
    assert _post(callback_url, ["a", "list"]) == 400
    assert _post(callback_url, {"state": "completed"}) == 400
    assert _post(callback_url, {"id": "x" * 10_000, "state": "completed"}) == 400
    assert _post(callback_url, {"id": job.job_id, "state": "exploded"}) == 400
    assert _raw_post(callback_url, b"{}", declared=1 << 30) == 413  # refused before reading a byte
    assert httpx.get(callback_url).status_code >= 400
    unknown = "3c1d8f5e-0000-4000-8000-000000000000"
    assert _post(callback_url, {"id": unknown, "state": "completed"}) == 200  # nothing waits on it
    assert not [r for r in luma_sim.requests() if unknown in r["path"]]
    # and the receiver still works for the real job
    out = wait_for(adapter, job)
    assert out.mime.startswith("image/")
    assert _lag_share(luma_sim, job.job_id) <= LUMA_WOKEN_LAG


def test_a_callback_url_whose_port_is_taken_falls_back_to_polling(
    luma_sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second process on the same URL cannot bind it: its jobs are found by the usual schedule."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv(callbacks.URL_ENV, f"http://127.0.0.1:{port}/")
        monkeypatch.setenv(callbacks.LISTEN_ENV, f"127.0.0.1:{port}")
        adapter = _photon(luma_sim)
        out = run_job(adapter, _image_spec())
    assert out.mime.startswith("image/") and out.job_id
    assert (
        _polls(luma_sim, out.job_id)[0] - _timing(luma_sim, out.job_id)["created"]
        < adapter.schedule.expected_s
    )


def test_a_poll_error_is_still_reported_with_callbacks_on(
    luma_sim: SimulatorHandle, callback_url: str
) -> None:
    adapter = _photon(luma_sim)
    missing = JobRef(provider="luma", job_id="3c1d8f5e-0000-4000-8000-00000000dead", spec_key="k")
    with pytest.raises(ProviderError):
        wait_for(adapter, missing, first_look_s=0.0)
