"""A provider's caps across processes and workers: Prefect global concurrency limits, strict, as the outer cap.

In-process throttles (providers/limits.py) do the fine-grained work; these only keep several runs of Cutroom
on one Prefect server from overrunning a vendor account together. Slots are leased, so a process killed while
holding one frees it when the lease runs out on that server (an embedded server never does: see shared_caps).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

import httpx
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.responses import ConcurrencyLimitWithLeaseResponse
from prefect.exceptions import ObjectAlreadyExists
from prefect.settings import PREFECT_API_URL

from cutroom import stopping
from cutroom.prefect_server import shared_server
from cutroom.settings import settings
from providers import registry
from providers.errors import ErrorKind
from providers.polling import GaveUp

logger = logging.getLogger(__name__)

#: The shortest lease Prefect's server grants; a killed run's slots come back this long after it died.
LEASE_S = 60.0
#: The longest a job waits for a free slot of its provider's limit while other runs hold every one.
SLOT_WAIT_S = 1800.0
#: The pause between asks, as the server says (Retry-After) within these bounds: with SLOT_WAIT_S, at most
#: SLOT_WAIT_S / 0.5 asks.
SLOT_PAUSE_S = (0.5, 30.0)


def limit_name(provider: str) -> str:
    return f"cutroom-{provider}"


def shared_caps() -> bool:
    """Whether providers are capped across processes too: as set, else only when runs share a Prefect server.

    An embedded server (cutroom/prefect_server.py) keeps leases in its memory and does not run Prefect's service that
    expires them, while the slots taken are counted in the database every later run reads: a run killed while
    holding slots would leave them taken for good (bench P4 saw the resume stall). Prefect 3.9.1.
    """
    chosen = settings().global_limits
    return bool(shared_server()) if chosen is None else chosen


def capped(provider: str) -> int | None:
    """The cross-process cap for a provider, or None when there is none to keep."""
    if not registry.billable(provider) or not shared_caps():
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


class VendorSlots:
    """Leased slots of the providers' global limits, through one API client for the whole process.

    Prefect's `concurrency()` makes an API client (and loads a CA bundle) for each acquire, each release and
    each lease renewal, plus a renewal thread per slot: ≈ 0.3 s of CPU per vendor job (bench P2). Here one
    client serves every slot and one thread renews every lease held, at a third of its duration.
    """

    def __init__(self) -> None:
        self._client: SyncPrefectClient | None = None
        self._api = ""
        self._lock = threading.Lock()
        self._held: set[UUID] = set()
        self._renewer: threading.Thread | None = None

    def client(self) -> SyncPrefectClient:
        """The process's client for the API of the current run (a new one if the run's API changed)."""
        api = PREFECT_API_URL.value() or ""
        with self._lock:
            if self._client is None or api != self._api:
                if self._client is not None:
                    self._client.__exit__(None, None, None)
                self._client, self._api = get_client(sync_client=True), api
                self._client.__enter__()
            return self._client

    def acquire(self, provider: str) -> UUID:
        """Wait for one slot of the provider's limit, as the server paces it (423 + Retry-After), for at most
        SLOT_WAIT_S (then GaveUp, which the task does not retry); a stopped run stops waiting (Stopped)."""
        began, asks = time.monotonic(), 0
        while True:
            stopping.check(f"waiting for a {provider} slot")
            asks += 1
            try:
                response = self.client().increment_concurrency_slots_with_lease(
                    names=[limit_name(provider)], slots=1, mode="concurrency", lease_duration=LEASE_S
                )
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code != 423:
                    raise
                waited = time.monotonic() - began
                if waited >= SLOT_WAIT_S:
                    raise GaveUp(
                        ErrorKind.rate_limited,
                        f"gave up waiting for a free {provider} slot after {waited / 60:.0f} min "
                        f"({asks} asks): other runs hold every slot of the global limit "
                        f"{limit_name(provider)}; nothing was submitted",
                        provider=provider,
                    ) from exc
                low, high = SLOT_PAUSE_S
                pause = min(max(float(exc.response.headers.get("Retry-After", 1)), low), high)
                stopping.sleep(min(pause, max(SLOT_WAIT_S - waited, low)))
                continue
            granted = ConcurrencyLimitWithLeaseResponse.model_validate(response.json())
            if not granted.limits:
                raise RuntimeError(
                    f"the global concurrency limit {limit_name(provider)} is missing: it is created when a "
                    "campaign starts (ensure_vendor_limits)"
                )
            with self._lock:
                self._held.add(granted.lease_id)
                if self._renewer is None:
                    self._renewer = threading.Thread(target=self._renew, name="cutroom-leases", daemon=True)
                    self._renewer.start()
            return granted.lease_id

    def release(self, lease: UUID) -> None:
        """Give the slot back; if the server cannot be told, the lease frees it when it runs out."""
        with self._lock:
            self._held.discard(lease)
        try:
            self.client().release_concurrency_slots_with_lease(lease)
        except httpx.HTTPError as exc:
            logger.warning(
                "could not release a vendor slot (it frees itself within %.0f s): %s", LEASE_S, exc
            )

    def held(self) -> list[UUID]:
        """The leases this process holds now."""
        with self._lock:
            return list(self._held)

    def _renew(self) -> None:
        """Keep every held lease alive; runs off any run's context, so it uses the client the slots made."""
        while True:
            time.sleep(LEASE_S / 3)
            with self._lock:
                held, client = list(self._held), self._client
            for lease in held:
                try:
                    client.renew_concurrency_lease(lease, LEASE_S)
                except httpx.HTTPError as exc:
                    # Released meanwhile, or the server is away: the next round tries again.
                    logger.debug("renewing lease %s: %s", lease, exc)


_slots = VendorSlots()


def held_leases() -> list[UUID]:
    """Vendor slots this process holds: a run that must exit at once gives them back (cli/stopping.py)."""
    return _slots.held()


@contextmanager
def vendor_slot(provider: str) -> Iterator[None]:
    """Hold one of the provider's global slots while a job runs on the vendor (its download takes none)."""
    if capped(provider) is None:
        yield
        return
    lease = _slots.acquire(provider)
    try:
        yield
    finally:
        _slots.release(lease)
