"""What every task shares: how results are keyed, which failures are retried, how much runs at once."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from prefect.exceptions import Abort
from pydantic import BaseModel

from cutroom import stopping
from cutroom.settings import settings
from cutroom.storage import StorageUnavailable, open_storage, unreachable
from providers.errors import ProviderError
from providers.polling import GaveUp

#: Bump to invalidate every cached result after a change that alters outputs.
CACHE_VERSION = "1"

T = TypeVar("T")


def _canonical(value: Any) -> Any:
    if isinstance(value, BaseModel):
        # Defaults left out, as in AssetSpec.key(): a new optional field keeps every stored result's key.
        # A changed default that alters outputs bumps CACHE_VERSION instead.
        return value.model_dump(mode="json", exclude_defaults=True)
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    return value


def key_on(*names: str) -> Callable[[Any, dict[str, Any]], str]:
    """A cache key from the named parameters' canonical JSON: the same inputs reuse the stored result."""

    def cache_key(context: Any, parameters: dict[str, Any]) -> str:
        task = getattr(getattr(context, "task", None), "name", "task")
        payload = {n: _canonical(parameters.get(n)) for n in names}
        blob = json.dumps([CACHE_VERSION, task, payload], sort_keys=True, default=str)
        return f"{task}-{hashlib.sha256(blob.encode()).hexdigest()}"

    return cache_key


def transient_only(task: Any, task_run: Any, state: Any) -> bool:
    """Retry vendor hiccups (rate limits, failed generations, I/O blips); never a bad input or a refusal,
    nor a wait that already ran to its bounds (GaveUp, StorageUnavailable): it would wait the same way."""
    # _sync: the condition is called from async tasks too, where result() would hand back a coroutine.
    error = state.result(raise_on_failure=False, _sync=True)
    if isinstance(error, GaveUp | StorageUnavailable):
        return False
    if isinstance(error, ProviderError):
        return error.kind.transient
    return isinstance(error, OSError) or unreachable(error)


async def stored(task: Any, out: str, /, *args: Any, **kwargs: Any) -> Any:
    """Run a task whose result names a stored file; a cached result whose file has gone is made again."""
    with _aborted_when_stopped():
        result = await task(*args, **kwargs)
        storage = open_storage(out)
        if not await off_loop(storage.exists, storage.key_of(result.uri)):
            result = await task.with_options(refresh_cache=True)(*args, **kwargs)
        return result


#: Threads for the blocking part of each step. Most sit waiting — on a vendor's job, its slot, or a local render
#: slot — so the pool is sized for waiting, not for CPUs: CPU-bound work is capped by local_slots. (asyncio's
#: default pool has cpu_count + 4 threads: a few jobs waiting on a vendor would starve every other step.)
_steps = ThreadPoolExecutor(max_workers=256, thread_name_prefix="cutroom-step")


async def in_thread(step: Callable[..., T], *args: Any) -> T:
    """Run a blocking step off the event loop, in the run's context (Prefect's run context goes with it).

    A stopped run starts no new step, and a step that stops (Stopped) aborts its task (_aborted_when_stopped).
    """
    with _aborted_when_stopped():
        stopping.check(f"step {getattr(step, '__name__', 'step')}")
        return await off_loop(step, *args)


async def off_loop(call: Callable[..., T], *args: Any) -> T:
    """A blocking call on the step threads, in the run's context, so that it stalls no other story of the
    process: a storage request takes a round trip, and waits out an absent endpoint for up to two minutes.

    Unlike in_thread, no step of its own: it runs after a stop too, and its errors (Stopped among them) reach
    the caller as they would have from the call itself."""
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(
        _steps, functools.partial(context.run, call, *args)
    )


@contextlib.contextmanager
def _aborted_when_stopped() -> Iterator[None]:
    """A stop (SIGINT/SIGTERM) ends the task as Prefect ends one whose flow run was cancelled: Abort, which
    neither fails nor crashes the run, is never retried, and unwinds every flow above it at once; the CLI then
    marks the runs Cancelled. (A plain Stopped would read as a failure: stories would go on, and be recorded.)
    """
    try:
        yield
    except stopping.Stopped as exc:
        raise Abort(str(exc)) from exc


_slots: threading.BoundedSemaphore | None = None
_slots_lock = threading.Lock()


def local_slots() -> AbstractContextManager[None]:
    """One of the CUTROOM_LOCAL_WORKERS slots that cap CPU-bound local rendering across all stories of a
    process, held for a `with` block; waiting for one ends when the run is stopped."""
    global _slots
    with _slots_lock:
        if _slots is None:
            _slots = threading.BoundedSemaphore(settings().local_workers)
        return stopping.holding(_slots, "a local render slot")
