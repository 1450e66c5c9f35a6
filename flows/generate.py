"""One asset on one provider, outside any campaign: `cutroom generate`."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from cutroom.assets import Asset, AssetKind, AssetSpec, InputRef, Operation, Style
from cutroom.channels import SIZES, Aspect
from cutroom.plan import CameraMotion
from cutroom.storage import sha256_bytes, sha256_file
from providers import registry
from providers.base import Capability
from tasks.generate import generate
from tasks.limits import ensure_vendor_limits
from tasks.policy import stored

#: Single assets live beside campaigns, in a campaign of their own.
ADHOC = "adhoc"


@flow(name="generate", flow_run_name="{kind}-{provider}")
async def generate_one(
    kind: AssetKind,
    prompt: str,
    provider: str = "local",
    model: str | None = None,
    aspect: Aspect = Aspect.landscape,
    duration_s: float = 5.0,
    camera_motion: CameraMotion = CameraMotion.push_in,
    image: str | None = None,
    end_image: str | None = None,
    loop: bool = False,
    operation: Operation | None = None,
    source: str | None = None,
    strength: str | float | None = None,
    resolution: str | None = None,
    fps: int | None = None,
    references: list[str] | None = None,
    style_references: list[str] | None = None,
    character_references: list[str] | None = None,
    voice: str | None = None,
    headline: str = "",
    palette: list[str] | None = None,
    out: str = "cutroom-out",
) -> Asset:
    """Make one image, clip or voice-over, or work on a source (upscale, reframe, enhance_frame_rate, …).

    Images are files, http(s) URLs, or 'provider:job_id' of an earlier generation (to extend or edit it).
    A new clip with no image starts from a generated keyframe. An image can follow reference, style and
    character images. strength, resolution and fps are passed on in the vendor's terms (a modify's mode or
    weight, a resolution name, the target of enhance_frame_rate); the model card and adapter check them.
    """
    await ensure_vendor_limits({provider, registry.choose(Capability.image).name})
    width, height = SIZES[aspect]
    style = Style(brand="", palette=tuple(palette or ("#1F2937", "#F59E0B", "#F9FAFB")), headline=headline)
    chosen = _model(Capability(kind.value), provider, model, operation)
    spec = AssetSpec(
        kind=kind, provider=provider, model=chosen, prompt=prompt, voice=voice, strength=_strength(strength),
        resolution=resolution, fps=fps,
    )  # fmt: skip
    if kind is not AssetKind.speech:
        spec = spec.model_copy(update={"aspect": aspect, "width": width, "height": height, "style": style})
    refs = tuple(
        input_ref(value, role)
        for role, values in (
            ("reference", references),
            ("style_reference", style_references),
            ("character_reference", character_references),
        )
        for value in values or ()
    )
    if operation is not None:
        spec = spec.model_copy(
            update={"operation": operation, "inputs": (input_ref(source or "", "source"), *refs)}
        )
    elif kind is AssetKind.video:
        start = await _start_frame(image, prompt, aspect, style, out)
        ending = (input_ref(end_image, "last_frame"),) if end_image else ()
        spec = spec.model_copy(
            update={
                "duration_s": duration_s,
                "fps": fps or 24,
                "camera_motion": camera_motion,
                "loop": loop,
                "inputs": (start, *ending, *refs),
            }
        )
    else:
        spec = spec.model_copy(update={"inputs": refs})
    return await stored(generate, out, spec, out=out, campaign_id=ADHOC, story_id=kind.value)


def _model(capability: Capability, provider: str, model: str | None, operation: Operation | None) -> str:
    """The model named, else the provider's default, unless an operation is asked for that the default
    does not do: then the provider's first model whose card offers it (Runway: aleph2, magnific, …)."""
    chosen = registry.model_for(capability, provider, model)
    if model is not None or operation is None:
        return chosen
    cards = registry.model_cards(registry.provider(capability, provider))
    if chosen in cards and operation in cards[chosen].operations:
        return chosen
    offering = (
        m for m, card in cards.items() if card.capability is capability and operation in card.operations
    )
    return next(offering, chosen)


def _strength(value: str | float | None) -> str | float | None:
    """A strength as typed: a number is a weight (Luma image modify), any other text a name (a video mode)."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def input_ref(value: str, role: str) -> InputRef:
    """An input from what a user typed: an http(s) URL, 'provider:job_id', or a file path."""
    if value.startswith(("http://", "https://")):
        # A link is passed on as it is (vendors that need public URLs take it); its text stands in for content.
        return InputRef(role=role, uri=value, url=value, sha256=sha256_bytes(value.encode()))
    if registry.is_job(value):
        return InputRef(role=role, uri=f"job:{value}", continues=value, sha256=sha256_bytes(value.encode()))
    path = Path(value).resolve()
    return InputRef(role=role, uri=path.as_uri(), sha256=sha256_file(path))


async def _start_frame(image: str | None, prompt: str, aspect: Aspect, style: Style, out: str) -> InputRef:
    if image:
        return input_ref(image, "keyframe")
    width, height = SIZES[aspect]
    picked = registry.choose(Capability.image).name
    model = getattr(registry.provider(Capability.image, picked), "model", "")
    spec = AssetSpec(
        kind=AssetKind.image,
        provider=picked,
        model=model,
        prompt=prompt,
        aspect=aspect,
        width=width,
        height=height,
        style=style,
    )
    keyframe = await stored(generate, out, spec, out=out, campaign_id=ADHOC, story_id="image")
    return InputRef(role="keyframe", uri=keyframe.uri, sha256=keyframe.sha256)
