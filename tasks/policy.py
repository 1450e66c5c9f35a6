"""What every task shares: how results are keyed, which failures are retried, how much runs at once."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import hashlib
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from pydantic import BaseModel

from cutroom.settings import settings
from cutroom.storage import open_storage, unreachable
from providers.errors import ProviderError

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
    """Retry vendor hiccups (rate limits, failed generations, I/O blips); never a bad input or a refusal."""
    # _sync: the condition is called from async tasks too, where result() would hand back a coroutine.
    error = state.result(raise_on_failure=False, _sync=True)
    if isinstance(error, ProviderError):
        return error.kind.transient
    return isinstance(error, OSError) or unreachable(error)


async def stored(task: Any, out: str, /, *args: Any, **kwargs: Any) -> Any:
    """Run a task whose result names a stored file; a cached result whose file has gone is made again."""
    result = await task(*args, **kwargs)
    storage = open_storage(out)
    if not storage.exists(storage.key_of(result.uri)):
        result = await task.with_options(refresh_cache=True)(*args, **kwargs)
    return result


#: Threads for the blocking part of each step. Most sit waiting — on a vendor's job, its slot, or a local render
#: slot — so the pool is sized for waiting, not for CPUs: CPU-bound work is capped by local_slots. (asyncio's
#: default pool has cpu_count + 4 threads: a few jobs waiting on a vendor would starve every other step.)
_steps = ThreadPoolExecutor(max_workers=256, thread_name_prefix="cutroom-step")


async def in_thread(step: Callable[..., T], *args: Any) -> T:
    """Run a blocking step off the event loop, in the run's context (Prefect's run context goes with it)."""
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(
        _steps, functools.partial(context.run, step, *args)
    )


_slots: threading.BoundedSemaphore | None = None
_slots_lock = threading.Lock()


def local_slots() -> threading.BoundedSemaphore:
    """Caps CPU-bound local rendering across all stories of a process at CUTROOM_LOCAL_WORKERS."""
    global _slots
    with _slots_lock:
        if _slots is None:
            _slots = threading.BoundedSemaphore(settings().local_workers)
        return _slots
