"""What a campaign does when a vendor refuses a request on moderation grounds: never a blind retry, never a
move to another vendor. A refused prompt is rephrased once by the refiner; a refused output is tried once more
on a new seed; refused again, the asset is left for a person to review."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from cutroom.assets import Asset, AssetSpec
from cutroom.brief import Brief
from cutroom.capabilities import Capability
from cutroom.metering import charged_to_campaign
from cutroom.review import NeedsReview
from providers import registry
from providers.errors import ErrorKind, ProviderError
from tasks.policy import in_thread

MODERATION = frozenset({ErrorKind.moderation_input, ErrorKind.moderation_output})


def answer_to(
    spec: AssetSpec, refusal: ProviderError, refiner: str, brief: Brief, story_id: str, out: str
) -> AssetSpec:
    """The one change worth trying after a refusal: a rephrased prompt, or a new seed for a blocked output."""
    if refusal.kind is ErrorKind.moderation_output:
        return spec.model_copy(update={"seed": spec.seed + 1})
    name, model = registry.named(refiner)
    with charged_to_campaign(out, brief.campaign_id, brief.budget_usd, story_id):
        rephrased = registry.provider(Capability.refiner, name).rephrase_refused(
            spec.prompt, refusal.detail, tuple(brief.brand.avoid), model
        )
    return spec.model_copy(update={"prompt": rephrased})


async def made_despite_refusal(
    spec: AssetSpec,
    make: Callable[[AssetSpec], Awaitable[Asset]],
    refiner: str,
    brief: Brief,
    story_id: str,
    out: str,
) -> Asset:
    try:
        return await make(spec)
    except ProviderError as refusal:
        if refusal.kind not in MODERATION:
            raise
        # A language-model refiner blocks for seconds: off the event loop the stories share.
        second = await in_thread(answer_to, spec, refusal, refiner, brief, story_id, out)
    try:
        return await make(second)
    except ProviderError as again:
        if again.kind not in MODERATION:
            raise
        raise NeedsReview(f"{again.provider or spec.provider} refused it twice ({again.kind.value}): {again.detail}",
                          prompt=second.prompt) from again  # fmt: skip
