"""Stopping: SIGTERM/SIGINT end a run within seconds, its Prefect runs Cancelled, its vendor jobs journaled,
and the same command resumes them; every retry loop gives up within its bounds and says on what.

The CLI tests run `cutroom` as a user does, against the vendor simulator and the session's Prefect server, and
stop it while a Runway job it submitted is still running; the rest drive the waits themselves.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from PIL import Image

from cutroom import stopping
from cutroom.assets import AssetKind, AssetSpec, InputRef
from cutroom.channels import Aspect
from providers import declarations, runway
from providers.errors import ErrorKind, ProviderError
from providers.polling import MAX_FAILURES, MAX_FAILURES_IN_A_ROW, GaveUp, PollSchedule, submit_job, wait_for
from providers.protocol import JobRef, JobState, JobStatus, Output
from tests.helpers import BIN
from tests.test_polling import FakeClock

#: What the CLI promises: a stopped run has exited this long after the signal.
STOP_WITHIN_S = 10.0
RUNWAY_CREATE = "/runway/v1/image_to_video"


@pytest.fixture(autouse=True)
def _not_stopped() -> Iterator[None]:
    """A stop requested by one test of this process does not leak into the next."""
    stopping.reset()
    yield
    stopping.reset()


# ---------------------------------------------------------------------------------------------------------
# The CLI, stopped while a vendor job runs


class Cli:
    """One `cutroom` process, started as a user would, stopped by a signal."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path):
        self.proc = subprocess.Popen(
            [str(BIN / "cutroom"), *args],
            env={**os.environ, "COLUMNS": "200", **env},
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_until(self, reached: Callable[[], bool], what: str, timeout_s: float = 180) -> None:
        deadline = time.monotonic() + timeout_s
        while not reached():
            if self.proc.poll() is not None:
                pytest.fail(f"the run ended before {what}:\n{self.proc.stdout.read()[-3000:]}")
            if time.monotonic() > deadline:
                self.proc.kill()
                pytest.fail(f"the run never reached {what}")
            time.sleep(0.1)

    def stop(self, signum: int) -> tuple[float, str]:
        """Send the signal; how long the process took to exit after it, and what it printed."""
        sent = time.monotonic()
        self.proc.send_signal(signum)
        try:
            output, _ = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(f"still running 60 s after {signal.Signals(signum).name}")
        return time.monotonic() - sent, output

    def finish(self) -> str:
        output, _ = self.proc.communicate(timeout=300)
        assert self.proc.returncode == 0, output[-4000:]
        return output


def ledger(out: Path, campaign_id: str) -> list[dict[str, Any]]:
    folder = out / "campaigns" / campaign_id / "ledger"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []


def submitted_on_runway(out: Path, campaign_id: str) -> Callable[[], bool]:
    """Whether a Runway job of the campaign is journaled: the create was answered, the job id written down."""
    return lambda: any(
        e["provider"] == "runway" and e["state"] == "submitted" for e in ledger(out, campaign_id)
    )


def creates(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in log if r["method"] == "POST" and r["path"] == RUNWAY_CREATE and r["status"] == 200]


def flow_runs(name: str, **parameters: str) -> list[Any]:
    """Flow runs by name (and by values in their parameters) and their subflows, each with its states."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName, FlowRunFilterParentFlowRunId

    def matches(run: Any) -> bool:
        return all(v in json.dumps(run.parameters) for v in parameters.values())

    async def read() -> list[Any]:
        async with get_client() as client:
            roots = [
                r
                for r in await client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name]))
                )
                if matches(r)
            ]
            parents = FlowRunFilterParentFlowRunId(any_=[r.id for r in roots])
            children = (
                await client.read_flow_runs(flow_run_filter=FlowRunFilter(parent_flow_run_id=parents))
                if roots
                else []
            )
            runs = [*roots, *children]
            histories = await asyncio.gather(*(client.read_flow_run_states(r.id) for r in runs))
            return [(r, [s.type.value for s in h]) for r, h in zip(runs, histories, strict=True)]

    return asyncio.run(read())


def assert_stopped_in_time(
    elapsed: float, output: str, code: int, signum: int, proc: subprocess.Popen
) -> None:
    assert proc.returncode == code, output[-3000:]
    assert elapsed < STOP_WITHIN_S, f"exited {elapsed:.1f} s after the signal"
    name = signal.Signals(signum).name
    assert f"stopped ({name}). Finished work is kept" in output and "run the same command again" in output
    assert "Traceback" not in output and "Crash detected" not in output, output[-3000:]


def assert_cancelled(runs: list[tuple[Any, list[str]]]) -> None:
    assert runs, "no flow run found"
    for run, history in runs:
        assert run.state.type.value == "CANCELLED", (run.name, history)
        assert "CRASHED" not in history and "FAILED" not in history, (run.name, history)


@pytest.fixture
def on_runway(simulator, prefect_server, tmp_path):
    """Runway jobs of 6 s (gen4_turbo's 30 s at 0.2), exactly: a job just submitted is still running when the
    run is stopped, and over by the time the rerun looks at it."""
    simulator.reset(latency_scale=0.2, latency_jitter=0.0)
    env = {
        "CUTROOM_SIMULATOR_URL": simulator.url,
        "CUTROOM_ALLOW_PRIVATE_URLS": "1",
        "CUTROOM_STORAGE": str(tmp_path / "out"),
        # As in test_durable: caps above what a brief here runs at once, so slots an earlier test's killed run
        # still holds (until their lease ends) keep nothing waiting.
        "CUTROOM_PROVIDER_LIMITS": json.dumps({"runway": {"concurrency": 8}}),
    }
    return simulator, env


def test_sigterm_ends_a_campaign_waiting_on_runway_and_the_same_command_resumes_it(on_runway, tmp_path):
    simulator, env = on_runway
    campaign_id = f"stop-{uuid.uuid4().hex[:8]}"
    brief = tmp_path / "brief.yaml"
    brief.write_text(
        yaml.safe_dump(
            {
                "campaign": "Stopped Kayaks",
                "id": campaign_id,
                "brand": {"name": "Osprey", "palette": ["#0D1B2A", "#E0E1DD", "#FF6B35"]},
                "goal": "sell sea kayak tours",
                "audience": "weekend adventurers",
                "channels": ["tiktok"],
                "quality_target": 10,
                "max_iterations": 1,
                "budget_usd": 20,
                "providers": {"video": ["runway"]},
            }
        )
    )
    out = tmp_path / "out"
    run = Cli(["run", str(brief), "--out", str(out)], env, tmp_path)
    run.wait_until(submitted_on_runway(out, campaign_id), "a journaled Runway job")
    # The job is still running at the vendor: the run is waiting on it.
    assert all(j["finished"] > time.time() for j in simulator.jobs() if j["vendor"] == "runway")

    elapsed, output = run.stop(signal.SIGTERM)
    assert_stopped_in_time(elapsed, output, 143, signal.SIGTERM, run.proc)
    print(f"cutroom run ended {elapsed:.2f} s after SIGTERM")
    # The campaign run and its story ended Cancelled, not Crashed nor left Running.
    runs = flow_runs(campaign_id)
    assert campaign_id in {r.name for r, _ in runs} and len(runs) >= 2, "the campaign and its story"
    assert_cancelled(runs)
    # Every Runway job the vendor accepted is journaled as still in flight; nothing half-written is left.
    runway_entries = [e for e in ledger(out, campaign_id) if e["provider"] == "runway"]
    assert {e["state"] for e in runway_entries} == {"submitted"}
    journaled = {e["job_id"] for e in runway_entries}
    assert len(journaled) == len(creates(simulator.requests()))
    assert not list(out.rglob(".part-*"))
    assert not (out / "campaigns" / campaign_id / "manifest.json").exists()

    # The same command again, the vendor now fast: it re-attaches to the journaled jobs, pays for none twice.
    simulator.configure(latency_scale=0.02)
    Cli(["run", str(brief), "--out", str(out)], env, tmp_path).finish()
    log = simulator.requests()
    every = creates(log)
    assert len({json.dumps(c["body"], sort_keys=True) for c in every}) == len(every), "a spec created twice"
    polled = {r["path"].rsplit("/", 1)[-1] for r in log if r["method"] == "GET" and "/v1/tasks/" in r["path"]}
    assert journaled <= polled, "the rerun did not look at the jobs the stopped run left"
    manifest = json.loads((out / "campaigns" / campaign_id / "manifest.json").read_text())
    assert manifest["status"] == "complete", [s.get("error") for s in manifest["stories"]]
    clips = [c for s in manifest["stories"] for c in s["clips"]]
    assert {c["job_id"] for c in clips} >= journaled and len(clips) == len(every)
    assert manifest["ledger"]["spent_usd"] == pytest.approx(sum(c["cost_usd"] for c in clips))


def test_sigint_ends_generate_even_with_a_poll_stuck_at_the_vendor_and_the_same_command_resumes_it(
    on_runway, tmp_path
):
    """A look at the job hangs (the vendor answers after 30 s): that thread cannot be woken, and the process
    still ends within the bound, its run Cancelled; the rerun re-attaches."""
    simulator, env = on_runway
    prompt = f"a kayak at dawn {uuid.uuid4().hex[:8]}"
    args = [
        "generate",
        "video",
        "--provider",
        "runway",
        "--prompt",
        prompt,
        "--out",
        str(tmp_path / "clip.mp4"),
    ]
    out = tmp_path / "out"
    made = Cli(args, env, tmp_path)
    made.wait_until(submitted_on_runway(out, "adhoc"), "a journaled Runway job")
    simulator.configure(fault_rate=1.0, faults=["timeout"], timeout_s=30)

    def looking() -> bool:
        return any("/v1/tasks/" in r["path"] and r["status"] == 0 for r in simulator.requests())

    made.wait_until(looking, "a look at the job that hangs")

    elapsed, output = made.stop(signal.SIGINT)
    assert_stopped_in_time(elapsed, output, 130, signal.SIGINT, made.proc)
    print(f"cutroom generate ended {elapsed:.2f} s after SIGINT")
    assert_cancelled(flow_runs("video-runway", prompt=prompt))
    (job,) = [e for e in ledger(out, "adhoc") if e["provider"] == "runway"]
    assert job["state"] == "submitted" and not (tmp_path / "clip.mp4").exists()

    simulator.configure(latency_scale=0.02, fault_rate=0.0, faults=[])
    again = Cli(args, env, tmp_path).finish()
    assert f"job runway:{job['job_id']}" in again
    assert len(creates(simulator.requests())) == 1, "the clip was paid for twice"
    assert (tmp_path / "clip.mp4").stat().st_size > 0 and not list(tmp_path.glob(".part-*"))


# ---------------------------------------------------------------------------------------------------------
# A download that fails on every try, against the simulator

SCALE = 0.02  # gen4_turbo's 30 s becomes 0.6 s; the adapter's pauses shrink alike (5 s minimum → 0.1 s)


def _finished_runway_job(
    simulator, tmp_path: Path, transport: httpx.BaseTransport | None = None
) -> tuple[Any, JobRef]:
    """A Runway adapter on the simulator (through `transport`), and a job of it that has already finished."""
    vendor = declarations.vendor("runway")
    generator = runway.RunwayVideo(
        "gen4_turbo",
        base_url=f"{simulator.url}{vendor.simulator.prefix}",
        api_key=vendor.simulator.key,
        time_scale=SCALE,
        http_client=httpx.Client(transport=transport) if transport else None,
    )
    keyframe = tmp_path / "keyframe.png"
    Image.new("RGB", (320, 180), "#1A2B3C").save(keyframe)
    spec = AssetSpec(
        kind=AssetKind.video, provider="runway", model="gen4_turbo", prompt="a lighthouse at dusk",
        aspect=Aspect.landscape, width=1280, height=720, duration_s=5.0,
        inputs=(InputRef(role="keyframe", uri=keyframe.as_uri(), sha256="x"),),
    )  # fmt: skip
    job = submit_job(generator, spec)
    time.sleep(30 * SCALE + 0.2)
    return generator, job


class MediaFails(httpx.BaseTransport):
    """The network, except that every download of an output answers 503."""

    def __init__(self) -> None:
        self.real, self.downloads = httpx.HTTPTransport(), 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if "/_media/" in request.url.path:
            self.downloads += 1
            return httpx.Response(503, text="upstream unavailable", request=request)
        return self.real.handle_request(request)


@pytest.fixture
def sim(simulator):
    simulator.reset(latency_scale=SCALE, latency_jitter=0.0)
    return simulator


def test_a_download_failing_on_every_try_gives_up_within_bounds_and_says_on_what(sim, tmp_path):
    media = MediaFails()
    generator, job = _finished_runway_job(sim, tmp_path, media)
    began = time.monotonic()
    with pytest.raises(GaveUp) as caught:
        wait_for(generator, job, first_look_s=0.0)
    took = time.monotonic() - began
    message = str(caught.value)
    assert f"gave up on job {job.job_id} after {MAX_FAILURES_IN_A_ROW} failed downloads in a row" in message
    assert "HTTP 503" in message and "run the same command again" in message
    assert media.downloads == MAX_FAILURES_IN_A_ROW
    # Ten pauses of the vendor's minimum poll interval (5 s, here scaled), not a run that goes on.
    assert took < MAX_FAILURES_IN_A_ROW * 5 * SCALE + 5, took


def test_an_expired_output_link_is_given_up_at_once(sim, tmp_path):
    sim.configure(fault_rate=1.0, faults=["expired"])
    generator, job = _finished_runway_job(sim, tmp_path)
    with pytest.raises(ProviderError) as caught:
        wait_for(generator, job, first_look_s=0.0)
    assert caught.value.kind is ErrorKind.not_found and "expired or gone" in str(caught.value)
    downloads = [r for r in sim.requests() if "/_media/" in r["path"]]
    assert len(downloads) == 1


# ---------------------------------------------------------------------------------------------------------
# Every wait's bounds, and a stop that cuts it short, on fake vendors


class Vendor:
    """A job that runs forever; looks fail where `failing(n)` (n counts looks from 1) says so."""

    name = "fake"

    def __init__(self, failing: Callable[[int], ProviderError | None] = lambda n: None):
        self.failing, self.looks = failing, 0

    def poll(self, job: JobRef) -> JobStatus:
        self.looks += 1
        if error := self.failing(self.looks):
            raise error
        return JobStatus(state=JobState.RUNNING)

    def fetch(self, job: JobRef) -> Output:
        raise NotImplementedError

    def submit(self, spec: AssetSpec) -> JobRef:
        raise NotImplementedError

    def estimate(self, spec: AssetSpec) -> float:
        return 0.0


JOB = JobRef(provider="fake", job_id="job-1", spec_key="k")
BUSY = ProviderError(ErrorKind.generation_failed, "poll: HTTP 503: busy", provider="fake")


def test_a_vendor_failing_every_other_look_is_given_up_after_max_failures() -> None:
    clock = FakeClock()
    flaky = Vendor(lambda n: BUSY if n % 2 else None)
    with pytest.raises(GaveUp, match=f"after {MAX_FAILURES} failed looks"):
        wait_for(
            flaky, JOB, schedule=PollSchedule(expected_s=10, timeout_s=1e9), sleep=clock.sleep, clock=clock
        )
    assert flaky.looks == 2 * MAX_FAILURES - 1


def test_a_job_that_never_ends_is_given_up_at_its_timeout_saying_how_far_it_got() -> None:
    clock = FakeClock()
    with pytest.raises(GaveUp) as caught:
        wait_for(
            Vendor(), JOB, schedule=PollSchedule(expected_s=10, timeout_s=300), sleep=clock.sleep, clock=clock
        )
    assert "without a result (its limit: 300 s)" in str(caught.value) and "it was running" in str(
        caught.value
    )
    assert 300 <= clock.now < 330


def test_a_retry_after_of_an_hour_is_not_waited_whole() -> None:
    clock = FakeClock()
    slow = ProviderError(ErrorKind.rate_limited, "poll: HTTP 429", provider="fake", retry_after=3600)
    with pytest.raises(GaveUp):
        wait_for(
            Vendor(lambda n: slow), JOB, schedule=PollSchedule(timeout_s=1e9), sleep=clock.sleep, clock=clock
        )
    assert max(clock.slept) <= 60


def test_rate_limited_submits_are_given_up_after_their_count_and_nothing_is_paid() -> None:
    class Refusing(Vendor):
        def submit(self, spec: AssetSpec) -> JobRef:
            self.looks += 1
            raise ProviderError(ErrorKind.rate_limited, "create: HTTP 429", provider="fake", retry_after=7200)

    slept: list[float] = []
    vendor = Refusing()
    with pytest.raises(ProviderError, match="gave up submitting after 6 rate-limited tries"):
        submit_job(
            vendor, AssetSpec(kind=AssetKind.image, provider="fake", model="m", prompt="p"), slept.append
        )
    assert vendor.looks == 6 and len(slept) == 5 and max(slept) <= 60


def test_a_stop_ends_a_wait_for_a_vendor_job_at_once() -> None:
    """wait_for sleeping before its next look (the default sleep) raises Stopped as soon as the run stops."""
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            wait_for(Vendor(), JOB, schedule=PollSchedule(expected_s=600, timeout_s=1e9))
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.2)
    asked = time.monotonic()
    stopping.request("stopped by SIGTERM")
    waiter.join(timeout=5)
    assert not waiter.is_alive() and time.monotonic() - asked < 0.5
    (error,) = errors
    assert isinstance(error, stopping.Stopped) and "SIGTERM" in str(error)


def test_a_stop_ends_a_wait_on_a_vendor_that_calls_back(simulator, monkeypatch) -> None:
    """A Luma job waited on for its callback (the safety-net look 30 s away) stops at once too."""
    import socket

    from providers import callbacks
    from providers.luma import LumaImage

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(callbacks.URL_ENV, f"http://127.0.0.1:{port}/cutroom/callbacks")
    monkeypatch.setenv(callbacks.LISTEN_ENV, f"127.0.0.1:{port}")
    simulator.reset(latency_scale=1.0, latency_jitter=0.0)
    luma = declarations.vendor("luma")
    adapter = LumaImage(
        "photon-1",
        base_url=f"{simulator.url}{luma.simulator.prefix}",
        api_key=luma.simulator.key,
        time_scale=1.0,
    )
    job = adapter.submit(AssetSpec(kind=AssetKind.image, provider="luma", model="photon-1", prompt="a pier"))
    threading.Timer(0.5, stopping.request, args=("stopped by SIGINT",)).start()
    began = time.monotonic()
    with pytest.raises(stopping.Stopped):
        wait_for(adapter, job)
    assert time.monotonic() - began < 1.5
    assert not [r for r in simulator.requests() if r["method"] == "GET"], "looked at the job after the stop"


def test_a_stop_ends_a_wait_for_a_vendor_slot_and_a_render_slot() -> None:
    from cutroom.settings import settings
    from providers.limits import Limits, Throttle
    from tasks.policy import local_slots

    throttle = Throttle(Limits(concurrency=1))
    outcomes: list[BaseException] = []

    def wait_for_slot(slot: Any) -> None:
        try:
            with slot:
                pass
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcomes.append(exc)

    with throttle.job():  # the only slot is taken
        holders = [local_slots() for _ in range(settings().local_workers)]
        for holder in holders:
            holder.__enter__()
        try:
            waiters = [
                threading.Thread(target=wait_for_slot, args=(s,)) for s in (throttle.job(), local_slots())
            ]
            for w in waiters:
                w.start()
            time.sleep(0.3)
            stopping.request("stopped by SIGINT")
            for w in waiters:
                w.join(timeout=2)
        finally:
            for holder in holders:
                holder.__exit__(None, None, None)
    assert len(outcomes) == 2 and all(isinstance(o, stopping.Stopped) for o in outcomes)


def test_an_unreachable_s3_endpoint_is_given_up_saying_what_and_a_stop_cuts_the_wait(tmp_path) -> None:
    from botocore.exceptions import EndpointConnectionError

    from cutroom.storage import S3_TRIES, S3Storage, StorageUnavailable

    class Away:
        calls = 0

        def head_object(self, **_: Any) -> None:
            Away.calls += 1
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")

    storage = S3Storage("s3://bucket/prefix", client=Away(), cache_dir=tmp_path, patience_s=2.0)
    with pytest.raises(StorageUnavailable) as caught:
        storage.exists("campaigns/x/manifest.json")
    assert "gave up checking campaigns/x/manifest.json at s3://bucket/prefix after" in str(caught.value)
    assert 1 < Away.calls < S3_TRIES

    patient = S3Storage("s3://bucket/prefix", client=Away(), cache_dir=tmp_path, patience_s=600.0)
    threading.Timer(0.5, stopping.request, args=("stopped by SIGTERM",)).start()
    began = time.monotonic()
    with pytest.raises(stopping.Stopped):
        patient.exists("campaigns/x/manifest.json")
    assert time.monotonic() - began < 2.0


def test_what_gave_up_is_not_retried_by_the_task() -> None:
    from cutroom.storage import StorageUnavailable
    from tasks.policy import transient_only

    class State:
        def __init__(self, error: BaseException):
            self.error = error

        def result(self, **_: Any) -> BaseException:
            return self.error

    assert transient_only(None, None, State(BUSY))
    assert not transient_only(None, None, State(GaveUp(ErrorKind.generation_failed, "gave up")))
    assert not transient_only(None, None, State(StorageUnavailable("gave up")))


def test_a_write_cut_off_by_an_exit_leaves_no_half_written_file(tmp_path, monkeypatch) -> None:
    from cutroom import storage

    monkeypatch.setattr(storage, "_closed", False)
    halfway, finish = threading.Event(), threading.Event()
    outcome: list[BaseException] = []

    def slow(fh: Any) -> None:
        fh.write(b"half")
        halfway.set()
        finish.wait(5)
        fh.write(b" and the rest")

    def write() -> None:
        try:
            storage._write_atomically(tmp_path / "manifest.json", slow)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    assert halfway.wait(5)
    assert storage.discard_partial_writes() == 1  # what the CLI does just before it exits
    finish.set()
    writer.join(5)
    assert isinstance(outcome[0], FileNotFoundError)  # its rename found nothing to rename
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(stopping.Stopped):  # and nothing new is begun
        storage.LocalStorage(tmp_path).put_bytes("a.json", b"{}", "application/json")
    monkeypatch.setattr(storage, "_closed", False)
