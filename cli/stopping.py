"""SIGINT and SIGTERM end a CLI run within STOP_WITHIN_S: its Prefect runs end Cancelled, its vendor jobs stay
journaled, and the same command run again resumes.

The flow runs in a thread of its own, so both signals come to the main thread, which stays free to stop it
(off the main thread Prefect's engine installs no SIGTERM handler of its own, which would crash the runs and
leave the process waiting on its jobs). On a signal the main thread:

1. marks the invocation's flow runs Cancelling (they carry a tag of their own): the server then starts no
   task of theirs and refuses any other end a flow proposes meanwhile;
2. stops the process's waits (cutroom.stopping): a poll's pause, an S3 back-off, a wait for a slot end at
   once, no new paid job is submitted, and each task ends in Prefect's Abort (tasks/policy.py), which unwinds
   the flows without failing or crashing them; a vendor job already submitted stays `submitted` in the ledger;
3. gives the flow UNWIND_S to unwind, then marks every flow and task run of the invocation that did not
   finish before the signal Cancelled;
4. exits 128 + the signal (130, 143) at once: whatever is still busy (a render, a slow download) is cut off,
   the temporary files of writes under way are deleted, vendor slots held are given back, and the embedded
   Prefect server is stopped.

A second signal while stopping exits at once.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from cli.embedded_server import stop_ours

T = TypeVar("T")

#: The promise: a run asked to stop has exited this long after the signal.
STOP_WITHIN_S = 10.0
#: How long the flow gets to unwind once every wait was told to stop.
UNWIND_S = 3.0
#: The most each round of Prefect API calls may take (marking runs, giving slots back).
API_S = 1.5
#: The most flushing Prefect's queued logs and events may take at exit.
FLUSH_S = 0.5
#: How long the embedded Prefect server gets to stop before it is killed.
SERVER_STOP_S = 1.0

SIGNALS = (signal.SIGINT, signal.SIGTERM)

logger = logging.getLogger(__name__)


class Interrupted(Exception):
    """The run was stopped by a signal and its Prefect runs marked Cancelled; exit with `code`."""

    def __init__(self, signum: int):
        self.signum = signum
        self.code = 128 + signum
        super().__init__(signal.Signals(signum).name)


def run_flow(start: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a flow (`start()` makes its coroutine) to its end in a thread of its own, and hand back its result;
    on SIGINT or SIGTERM stop it as the module says and raise Interrupted."""
    from prefect import tags

    tag = f"cutroom-run-{uuid.uuid4().hex[:12]}"
    outcome: dict[str, Any] = {}
    finished = threading.Event()
    signalled: list[int] = []

    def work() -> None:
        try:
            # Every flow and task run of this invocation carries the tag: the stop finds them by it.
            with tags(tag):
                outcome["result"] = asyncio.run(start())
        except BaseException as exc:  # handed to the main thread as it is
            outcome["error"] = exc
        finally:
            finished.set()

    def on_signal(signum: int, frame: Any) -> None:
        if signalled:  # asked again while stopping: no more waiting
            _exit(128 + signum, patient=False)
        signalled.append(signum)  # nothing that takes a lock here: the main thread may hold it

    # The flow's thread starts in this context, so the Prefect settings made for the run go with it.
    thread = threading.Thread(
        target=contextvars.copy_context().run, args=(work,), name="cutroom-flow", daemon=True
    )
    previous = {s: signal.signal(s, on_signal) for s in SIGNALS}
    thread.start()
    while not finished.wait(0.1) and not signalled:
        pass
    if signalled:
        _stop(tag, signalled[0], thread)
        raise Interrupted(signalled[0])  # our handlers stay: a second signal exits at once
    for s, handler in previous.items():
        signal.signal(s, handler)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def _stop(tag: str, signum: int, thread: threading.Thread) -> None:
    """Steps 1–3: the runs Cancelling, every wait stopped, a few seconds to unwind, the runs Cancelled."""
    from cutroom import stopping

    began, since = time.monotonic(), datetime.now(UTC)
    _quiet_prefect()
    _mark(tag, since, final=False)
    stopping.request(f"stopped by {signal.Signals(signum).name}")
    thread.join(max(0.0, UNWIND_S - (time.monotonic() - began)))
    _mark(tag, since, final=True)
    logger.debug("stopped in %.1f s; the flow %s", time.monotonic() - began,
                 "unwound" if not thread.is_alive() else "was cut off")  # fmt: skip


def _quiet_prefect() -> None:
    """No more Prefect lines on the console (aborted tasks, runs ending): the CLI's one line says it all."""
    for name in ("", "prefect", "uvicorn", "fastapi"):
        for handler in logging.getLogger(name).handlers:
            if type(handler).__name__ == "PrefectConsoleHandler":
                handler.setLevel(logging.CRITICAL + 1)


def _api_up() -> bool:
    """Whether there is a Prefect API to tell: a server set, or the embedded one this process launched (which is
    set too, cli/embedded_server.py)."""
    from prefect.settings import PREFECT_API_URL

    return bool(PREFECT_API_URL.value())


def _mark(tag: str, since: datetime, *, final: bool) -> None:
    """Mark the tagged flow runs Cancelling (not final) or Cancelled (final, and their unfinished task runs
    too), within API_S; a Prefect API that cannot be reached leaves them as they are."""
    if not _api_up():
        return
    try:
        asyncio.run(asyncio.wait_for(_marked(tag, since, final), API_S))
    except Exception as exc:  # the API is away or slow: the stop goes on, the runs stay as they were
        logger.debug("could not mark the runs of %s: %r", tag, exc)


#: Run states a stop ends: every one not final, and (in the final round) an end that came after the signal.
_UNFINISHED = ("SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING")
_ENDED_BADLY = ("FAILED", "CRASHED")
#: Runs asked for at once (the server's default page).
_PAGE = 200


async def _marked(tag: str, since: datetime, final: bool) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        FlowRunFilterTags,
        TaskRunFilter,
        TaskRunFilterState,
        TaskRunFilterStateType,
        TaskRunFilterTags,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Cancelled, Cancelling

    from tasks.limits import held_leases

    note = "Stopped by a signal: finished work is kept; run the same command again to resume."
    kinds = [StateType(k) for k in (*_UNFINISHED, *(_ENDED_BADLY if final else ()))]
    # A run that failed or crashed after the signal did so because of it; one that ended before keeps its end.
    since = since - timedelta(seconds=1)  # the server's clock, as read on the same machine

    def stoppable(run: Any) -> bool:
        return run.state is not None and (run.state.type.value in _UNFINISHED or run.state.timestamp >= since)

    async def pages(read: Callable[..., Any], **query: Any) -> list[Any]:
        found: list[Any] = []
        while len(batch := await read(**query, limit=_PAGE, offset=len(found))) == _PAGE:
            found += batch
        return found + batch

    async with get_client() as client:
        flows = await pages(
            client.read_flow_runs,
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[tag]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=kinds)),
            ),
        )
        state = Cancelled if final else Cancelling
        todo = [
            client.set_flow_run_state(r.id, state(message=note), force=True) for r in flows if stoppable(r)
        ]
        if final:
            tasks = await pages(
                client.read_task_runs,
                task_run_filter=TaskRunFilter(
                    tags=TaskRunFilterTags(all_=[tag]),
                    state=TaskRunFilterState(type=TaskRunFilterStateType(any_=kinds)),
                ),
            )
            todo += [client.set_task_run_state(r.id, Cancelled(message=note), force=True) for r in tasks
                     if stoppable(r)]  # fmt: skip
            todo += [client.release_concurrency_slots_with_lease(lease) for lease in held_leases()]
        await asyncio.gather(*todo)


def message(signum: int) -> str:
    return (
        f"[yellow]stopped[/] ({signal.Signals(signum).name}). Finished work is kept and jobs still running "
        "at vendors stay journaled; run the same command again to resume."
    )


def exit_now(code: int) -> None:
    """Step 4: end the process now, with `code`, whatever is still busy."""
    _exit(code, patient=True)


def _exit(code: int, *, patient: bool) -> None:
    from cutroom.storage import discard_partial_writes

    discard_partial_writes()  # no half-written file stays behind
    if patient:
        _flush_prefect()
    stop_ours(SERVER_STOP_S if patient else 0.0)  # an exit skips its atexit stop
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _flush_prefect() -> None:
    """Send the run logs and events still queued (the runs' last words), within FLUSH_S."""
    if "prefect.logging.handlers" not in sys.modules:
        return
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    done = threading.Event()

    def flush() -> None:
        try:
            APILogWorker.drain_all(timeout=FLUSH_S)
            EventsWorker.drain_all(timeout=FLUSH_S)
        except Exception as exc:  # nothing to flush to
            logger.debug("flushing Prefect's queues: %r", exc)
        finally:
            done.set()

    threading.Thread(target=flush, daemon=True).start()
    done.wait(FLUSH_S)
