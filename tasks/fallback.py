"""Moving on to the next provider a brief lists when one cannot serve the run at all: no key, a refused key, an
empty account. Never on a moderation refusal (a different vendor is no answer to a refused prompt) nor on a
passing fault (the task's retries answer those)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable

from cutroom.assets import Asset, AssetKind, AssetSpec
from cutroom.capabilities import Capability
from cutroom.lineup import Pick
from providers import declarations
from providers.errors import ErrorKind, ProviderError

logger = logging.getLogger(__name__)

#: What says a vendor cannot serve this run, whatever it is asked.
MOVE_ON = frozenset({ErrorKind.not_configured, ErrorKind.auth, ErrorKind.insufficient_credits})

#: Vendors found unusable in a campaign run, and why: its later assets go straight to the next one.
_unusable: dict[str, dict[str, str]] = {}
_lock = threading.Lock()


def moves_on(error: BaseException) -> bool:
    return isinstance(error, ProviderError) and error.kind in MOVE_ON


def candidates(pick: Pick, run: str) -> list[str]:
    """The pick and its fallbacks, in order, less those the run already found unusable."""
    with _lock:
        found = _unusable.get(run, {})
        return [name for name in (pick.name, *pick.fallbacks) if name not in found]


def unusable(provider: str, error: ProviderError, run: str) -> str:
    """Remember that a provider cannot serve this run; the reason, as the manifest will say it."""
    reason = f"{provider}: {error.kind.value}: {error.detail}"
    with _lock:
        _unusable.setdefault(run, {})[provider] = reason
    return reason


def passed_over(pick: Pick, run: str) -> list[str]:
    """Why each of the pick's providers the run found unusable was passed over."""
    with _lock:
        found = _unusable.get(run, {})
        return [found[name] for name in (pick.name, *pick.fallbacks) if name in found]


def on(spec: AssetSpec, provider: str) -> AssetSpec:
    """The same request for another provider: its default model, a clip's length snapped to that model's, the
    inputs that model takes, and none of the first model's own options (they are that model's)."""
    if provider == spec.provider:
        return spec
    capability = Capability(spec.kind.value)
    vendor = declarations.vendor(provider)
    card = vendor.card(vendor.default_model(capability), capability)
    inputs = tuple(ref for ref in spec.inputs if ref.role in card.inputs or spec.operation is not None)
    update = {"provider": provider, "model": card.model, "options": {}, "inputs": inputs}
    if spec.kind is AssetKind.video and card.durations_s and spec.duration_s is not None:
        asked = spec.duration_s
        update["duration_s"] = min(card.durations_s, key=lambda d: (abs(d - asked), -d))
    return spec.model_copy(update=update)


async def first_that_serves(
    pick: Pick, spec: AssetSpec, make: Callable[[AssetSpec], Awaitable[Asset]], run: str
) -> Asset:
    """The asset made by the first of the pick's providers that can serve the run; the asset says which were
    passed over and why."""
    for provider in candidates(pick, run):
        try:
            asset = await make(on(spec, provider))
        except ProviderError as exc:
            if not moves_on(exc):
                raise
            logger.warning("passing over %s", unusable(provider, exc, run))
            continue
        asset.passed_over = passed_over(pick, run)
        return asset
    tried = "; ".join(passed_over(pick, run))
    raise ProviderError(ErrorKind.not_configured, f"no {spec.kind.value} provider could make it: {tried}")
