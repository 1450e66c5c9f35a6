"""A provider's caps across processes and workers: Prefect global concurrency limits, strict, as the outer cap.

In-process throttles (providers/limits.py) do the fine-grained work; these only keep several runs of Cutroom
on one Prefect server from overrunning a vendor account together. Slots are leased, so a process killed while
holding one frees it when the lease runs out.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prefect.client.orchestration import get_client
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists

from cutroom.settings import settings
from providers import registry

#: The shortest lease Prefect's server grants; a killed run's slots come back this long after it died.
LEASE_S = 60.0


def limit_name(provider: str) -> str:
    return f"cutroom-{provider}"


def capped(provider: str) -> int | None:
    """The cross-process cap for a provider, or None when there is none to keep."""
    if provider == "local" or not settings().global_limits:
        return None
    return registry.limits(provider).concurrency


async def ensure_vendor_limits(providers: set[str]) -> None:
    """Create or update the global limit of every capped provider a run will use, before its first job."""
    async with get_client() as client:
        for provider in sorted(providers):
            cap = capped(provider)
            if cap is None:
                continue
            try:
                await client.upsert_global_concurrency_limit_by_name(limit_name(provider), cap)
            except ObjectAlreadyExists:  # another run created it between our read and our create
                await client.upsert_global_concurrency_limit_by_name(limit_name(provider), cap)


@contextmanager
def vendor_slot(provider: str) -> Iterator[None]:
    """Hold one of the provider's global slots for as long as a job is in flight."""
    if capped(provider) is None:
        yield
        return
    with concurrency(limit_name(provider), occupy=1, strict=True, lease_duration=LEASE_S):
        yield
