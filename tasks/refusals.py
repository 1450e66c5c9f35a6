"""What a campaign does when a vendor refuses a request on moderation grounds: never a blind retry, never a
move to another vendor. A refused prompt is rephrased once by the refiner; a refused output is tried once more
on a new seed; refused again, the asset is left for a person to review."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from cutroom.assets import Asset, AssetSpec
from cutroom.capabilities import Capability
from cutroom.review import NeedsReview
from providers import registry
from providers.errors import ErrorKind, ProviderError

MODERATION = frozenset({ErrorKind.moderation_input, ErrorKind.moderation_output})


def answer_to(spec: AssetSpec, refusal: ProviderError, refiner: str) -> AssetSpec:
    """The one change worth trying after a refusal: a rephrased prompt, or a new seed for a blocked output."""
    if refusal.kind is ErrorKind.moderation_output:
        return spec.model_copy(update={"seed": spec.seed + 1})
    rephrased = registry.provider(Capability.refiner, refiner).rephrase_refused(spec.prompt, refusal.detail)
    return spec.model_copy(update={"prompt": rephrased})


async def made_despite_refusal(
    spec: AssetSpec, make: Callable[[AssetSpec], Awaitable[Asset]], refiner: str
) -> Asset:
    try:
        return await make(spec)
    except ProviderError as refusal:
        if refusal.kind not in MODERATION:
            raise
        second = answer_to(spec, refusal, refiner)
    try:
        return await make(second)
    except ProviderError as again:
        if again.kind not in MODERATION:
            raise
        raise NeedsReview(f"{again.provider or spec.provider} refused it twice ({again.kind.value}): {again.detail}",
                          prompt=second.prompt) from again  # fmt: skip
