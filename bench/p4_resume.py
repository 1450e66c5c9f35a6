"""P4: a campaign killed with SIGKILL halfway, then resumed: duplicate submits, re-spend, resume time.

The bench campaign (bench/campaigns.py) is made three ways against the simulator, all on one Prefect home as
one user's machine would be (bench.campaigns.shared_world):
  - uninterrupted, for reference — P1's run of the same size (bench.campaigns.made): its wall W, its vendor jobs
    (accepted creates in the simulator's request log during its run) and its spend (`ledger.spent_usd`);
  - again as a fresh campaign, its process group (the CLI; its embedded Prefect server, in a group of its own,
    gets SIGTERM from Linux as the CLI dies) killed with SIGKILL once the ledger holds settled entries for half the reference's vendor jobs and none merely
    reserved — as tests/test_durable.py kills, since between a vendor's accepting a submit and the ledger's
    recording it no client of these APIs can know the job exists;
  - resumed: the same command again, to the end (wall R).

Duplicate submits are vendor jobs created during the killed run and its resumes (the simulator's job log) that
the campaign's ledger does not hold: each spec is journaled with the one job it paid for, so any other job is
a generation paid twice. (tests/test_durable.py compares create bodies instead; here every story of a type
sends the same body, so bodies cannot tell a duplicate from a sibling story.) Re-spend is the resumed
campaign's ledger spend minus the reference's; the vendor's side of it is the accepted creates beyond the
reference's. The resume is weighed against the work left at the kill: W × (1 − the share of jobs settled), and
split into its start (to its first vendor request), its vendor phase (first submit to last download, as P1 times
it) beside the lower bound of the jobs it created (P1's, which a resume with no keyframes left still has), and
its end (the reels, the manifest, exit): W × the share left halves a start and an end that a resume pays whole.

The kill waits for a vendor job in flight as well (up to 75 % settled), so the resume has a job to re-attach
to. Had the killed run held Prefect global concurrency slots, an embedded server would never give them back
(it keeps leases in memory and does not expire them): this benchmark found that, and Cutroom now keeps those
caps in-process unless runs share a server (tasks/limits.shared_caps). The slots Prefect's database counts as
taken are still read before and after each resume, while no run is alive; a resume that, with work left, makes
no vendor request for 30 s after leases would have ended is reported stalled, killed, and the campaign resumed
once more with CUTROOM_GLOBAL_LIMITS=false as a second row. Duplicates and re-spend count the whole chain.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import time
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.campaigns import (
    LATENCY_SCALE,
    campaign_size,
    cutroom_run,
    made,
    running,
    shared_environment,
    shared_world,
    write_brief,
)
from bench.harness import Row, download_times, ratio, vendor_phase
from bench.p1_critical_path import lower_bound
from tasks.limits import LEASE_S

TITLE = "Resume after kill -9 at 50 %: duplicate submits, re-spend, resume time"
#: The resume's wall against the work left at the kill (issue #16's round-two bar).
RESUME_LIMIT = 1.05
TARGET = f"0 duplicate submits, $0 re-spend, resume ≤ {RESUME_LIMIT:g}× the work left"
#: Killed once this share of the reference's vendor jobs is settled.
AT = 0.5
#: … with a vendor job in flight, or, if the run never has one then, once this share is settled.
LATEST = 0.75
#: Requests that create a paid vendor job (as tests/test_durable.py counts them).
CREATES = ("/luma/dream-machine/v1/generations/image", "/runway/v1/image_to_video")
#: Past a killed run's leases and Prefect's repossessor loop, this long without a vendor request: stalled.
STALL_S = 30.0
REPOSSESSOR_S = 15.0
POLL_S = 0.05
CAMPAIGN = "crashed"


@dataclass
class Span:
    """One process's run: when it started and ended (the simulator's clock), and how it ended."""

    started: float
    ended: float = 0.0
    finished: bool = False
    note: str = ""

    @property
    def wall_s(self) -> float:
        return self.ended - self.started


@dataclass
class Simulator:
    """The simulator's request log, read for one time window at a time."""

    http: httpx.Client
    log: list[dict[str, Any]] = field(default_factory=list)

    def requests(self, start: float, end: float = math.inf) -> list[dict[str, Any]]:
        self.log = self.http.get("/_sim/requests").json()
        return [r for r in self.log if start <= r["time"] <= end]

    def jobs(self, start: float, end: float) -> set[str]:
        """Ids of the vendor jobs created in a window."""
        return {j["id"] for j in self.job_log(start, end)}

    def job_log(self, start: float, end: float) -> list[dict[str, Any]]:
        """The vendor jobs created in a window, as the simulator logged them."""
        return [j for j in self.http.get("/_sim/jobs").json() if start <= j["created"] <= end]


def creates(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in requests if r["method"] == "POST" and r["path"] in CREATES and r["status"] == 200]


def vendor_requests(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in requests if "/_sim/" not in r["path"]]


def ledger(out: Path, campaign_id: str) -> list[dict[str, Any]]:
    entries = []
    for path in (out / "campaigns" / campaign_id / "ledger").glob("*.json"):
        try:
            entries.append(json.loads(path.read_text()))
        except (OSError, ValueError):  # replaced between the listing and the read
            continue
    return entries


def states(out: Path, campaign_id: str) -> Counter[str]:
    return Counter(e["state"] for e in ledger(out, campaign_id))


def journaled(out: Path, campaign_id: str) -> set[str]:
    """The vendor jobs the campaign's ledger holds, one per paid spec."""
    return {e["job_id"] for e in ledger(out, campaign_id) if e.get("job_id")}


def spent(out: Path, campaign_id: str) -> float:
    manifest = json.loads((out / "campaigns" / campaign_id / "manifest.json").read_text())
    return manifest["ledger"]["spent_usd"]


def held_slots(database: Path) -> int:
    """Vendor slots Prefect's database counts as taken (no run of ours is alive while this is read)."""
    with sqlite3.connect(database) as db:
        rows = db.execute(
            "SELECT active_slots FROM concurrency_limit_v2 WHERE name LIKE 'cutroom-%'"
        ).fetchall()
    return sum(n for (n,) in rows)


def kill_group(pid: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def kill_at_half(
    command: list[str], env: dict[str, str], log: Path, out: Path, campaign_id: str, jobs: int
) -> tuple[Span, Counter[str]]:
    """Run until AT of `jobs` are settled, one is in flight and none only reserved; SIGKILL the process group."""
    wanted = math.ceil(AT * jobs)
    span = Span(started=time.time())
    with running(command, env, log) as process:
        while True:
            now = states(out, campaign_id)
            # Mid-work: a job in flight for the resume to re-attach to, unless the run never pauses for one.
            busy = now["submitted"] or now["settled"] >= math.ceil(LATEST * jobs)
            if now["settled"] >= wanted and busy and not now["reserved"]:
                kill_group(process.pid)
                span.ended = time.time()
                break
            if process.poll() is not None:
                raise RuntimeError(f"the run ended (exit {process.returncode}) before the kill: see {log}")
            time.sleep(POLL_S)
        process.wait()
    return span, states(out, campaign_id)


@dataclass
class Resume:
    """One resume: its span, when it first asked a vendor anything, what it created, the slots around it, and
    where its time went: before its first vendor request, its vendor phase (as P1 times a campaign's) against
    the lower bound of the jobs it created, and after its last download."""

    span: Span
    first_request_s: float | None
    creates: int
    vendor_s: float
    bound_s: float
    after_s: float
    settled_before: int
    slots_before: int
    slots_after: int


def resume(
    command: list[str],
    env: dict[str, str],
    log: Path,
    work: Path,
    jobs: int,
    sim: Simulator,
    killed_at: float,
) -> Resume:
    """Run the campaign to its end, or until stalled: work left, and no vendor request since a killed run's
    leases ran out (plus Prefect's repossessor loop) and STALL_S more. A stalled run is killed as the crash was,
    never while a submit's job id is not in the ledger yet."""
    out, database = work / CAMPAIGN, work / "prefect" / "prefect.db"
    before, slots_before = states(out, CAMPAIGN)["settled"], held_slots(database)
    span = Span(started=time.time())
    first: float | None = None
    last, looked = span.started, 0.0
    with running(command, env, log) as process:
        while process.poll() is None:
            time.sleep(POLL_S)
            if time.monotonic() - looked < 1:
                continue
            looked = time.monotonic()
            if asked := vendor_requests(sim.requests(span.started)):
                first, last = first or asked[0]["time"], asked[-1]["time"]
            now = states(out, CAMPAIGN)
            idle_since = max(last, killed_at + LEASE_S + REPOSSESSOR_S)
            if now["settled"] < jobs and time.time() - idle_since > STALL_S:
                deadline = time.monotonic() + 10
                while states(out, CAMPAIGN)["reserved"] and time.monotonic() < deadline:
                    time.sleep(POLL_S)
                kill_group(process.pid)
                span.note = (
                    f"stalled {time.time() - last:.0f} s with {jobs - now['settled']} vendor jobs left"
                )
                break
        process.wait()
        span.ended = time.time()
        span.finished = process.returncode == 0
    if process.returncode not in (0, -signal.SIGKILL):
        raise RuntimeError(f"the resume exited {process.returncode}: see {log}")
    requests = sim.requests(span.started, span.ended)
    downloads = download_times(requests)
    return Resume(
        span=span,
        first_request_s=first - span.started if first else None,
        creates=len(creates(requests)),
        vendor_s=vendor_phase(requests) if first and downloads else 0.0,
        bound_s=lower_bound(sim.job_log(span.started, span.ended)),
        after_s=span.ended - max(downloads, default=span.ended),
        settled_before=before,
        slots_before=slots_before,
        slots_after=held_slots(database),
    )


def run(quick: bool) -> list[Row]:
    stories = campaign_size(quick)
    work, url = shared_world()
    sim = Simulator(httpx.Client(base_url=url, timeout=30))
    env = shared_environment()
    # The reference is P1's run of the same campaign (bench.campaigns.made).
    reference = made("Cutroom", stories)
    ref_requests = reference.requests
    ref_creates = creates(ref_requests)
    ref_first = vendor_requests(ref_requests)[0]["time"] - reference.finished.started
    jobs = len(ref_creates)
    ref_spent = spent(reference.out, reference.out.name)
    ref_unjournaled = {j["id"] for j in reference.jobs} - journaled(reference.out, reference.out.name)

    command = cutroom_run(write_brief(work, stories, CAMPAIGN), work / CAMPAIGN)
    killed, at_kill = kill_at_half(command, env, work / "killed.log", work / CAMPAIGN, CAMPAIGN, jobs)
    resumes = [resume(command, env, work / "resume.log", work, jobs, sim, killed.ended)]
    if not resumes[0].span.finished:  # the bound: the same campaign resumed without the global slots
        unlimited = shared_environment(CUTROOM_GLOBAL_LIMITS="false")
        resumes.append(resume(command, unlimited, work / "unlimited.log", work, jobs, sim, killed.ended))
        if not resumes[-1].span.finished:
            raise RuntimeError(f"the resume without global limits did not finish: {resumes[-1].span.note}")
    created = creates(sim.requests(killed.started, resumes[-1].span.ended))
    duplicates = len(sim.jobs(killed.started, resumes[-1].span.ended) - journaled(work / CAMPAIGN, CAMPAIGN))
    respend = round(spent(work / CAMPAIGN, CAMPAIGN) - ref_spent, 4)

    wall = reference.finished.timing.wall_s
    uninterrupted = {
        "wall s": wall,
        "vendor jobs": jobs,
        "spend $": ref_spent,
        "first vendor request s": ref_first,
        "jobs not in ledger": len(ref_unjournaled),
    }
    crash = {
        "duplicate submits": duplicates,
        "re-spend $": respend,
        "extra vendor creates": len(created) - len(ref_creates),
        "killed at s": killed.wall_s,
        "jobs settled at kill %": 100 * at_kill["settled"] / jobs,
        "in flight at kill": at_kill["submitted"],
    }
    clean = duplicates == 0 and respend == 0
    subject = (
        f"{stories} email stories, SIGKILL at {100 * AT:.0f} % of vendor jobs, latency × {LATENCY_SCALE}"
    )
    rows = []
    elapsed = killed.wall_s
    for n, done in enumerate(resumes):
        remaining = wall * (1 - done.settled_before / jobs)
        span = done.span
        elapsed += span.wall_s
        rows.append(
            Row(
                subject=subject
                + (
                    ", resumed"
                    if n == 0
                    else ", the stalled resume killed, resumed with CUTROOM_GLOBAL_LIMITS=false"
                ),
                figures={
                    **crash,
                    "resume s": span.wall_s,
                    "remaining work s": remaining,
                    "resume vendor jobs": done.creates,
                    "resume first vendor request s": done.first_request_s,
                    "resume vendor phase s": done.vendor_s,
                    "resume bound s": done.bound_s,
                    "resume after last download s": done.after_s,
                    "vendor slots held at start": done.slots_before,
                    "vendor slots held after": done.slots_after,
                },
                baselines={"uninterrupted": uninterrupted},
                ratios={
                    "resume ÷ remaining work": ratio(span.wall_s, remaining) if span.finished else None,
                    "resume vendor phase ÷ its bound": ratio(done.vendor_s, done.bound_s),
                    "resume ÷ uninterrupted": ratio(span.wall_s, wall) if span.finished else None,
                    "killed + resumes ÷ uninterrupted": ratio(elapsed, wall) if span.finished else None,
                },
                target=TARGET if span.finished else f"{TARGET}; the resume {span.note}",
                met=clean and span.finished and span.wall_s <= RESUME_LIMIT * remaining,
            )
        )
    return rows
