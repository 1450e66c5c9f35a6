"""Running the vendor adapters against the loopback simulator instead of the vendors."""

from __future__ import annotations

from functools import cache

import httpx

from cutroom.settings import settings

#: Set to the simulator's address to run every vendor adapter against it with a dummy key.
SIMULATOR_ENV = "CUTROOM_SIMULATOR_URL"


def simulator_url() -> str | None:
    url = settings().simulator_url
    return url.rstrip("/") if url else None


@cache
def _latency_scale(url: str) -> float:
    try:
        return float(httpx.get(f"{url}/_sim/config", timeout=5).json()["latency_scale"])
    except (httpx.HTTPError, ValueError, KeyError):
        return 1.0


def time_scale() -> float:
    """How much faster the simulator runs jobs than the vendor (its latency_scale); 1.0 against a vendor.

    Adapters scale their poll schedule by it, so a sped-up simulator is not polled on the vendor's clock.
    """
    url = simulator_url()
    return _latency_scale(url) if url else 1.0
