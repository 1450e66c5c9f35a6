"""One asset on one provider, outside any campaign: `cutroom generate`."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from cutroom.assets import Asset, AssetKind, AssetSpec, InputRef, Style
from cutroom.channels import SIZES, Aspect
from cutroom.plan import CameraMotion
from cutroom.storage import sha256_bytes, sha256_file
from providers import registry
from providers.base import Capability
from tasks.generate import generate
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
    voice: str | None = None,
    headline: str = "",
    palette: list[str] | None = None,
    out: str = "cutroom-out",
) -> Asset:
    """Make one image, clip or voice-over; a clip with no --image starts from a generated keyframe."""
    width, height = SIZES[aspect]
    style = Style(brand="", palette=tuple(palette or ("#1F2937", "#F59E0B", "#F9FAFB")), headline=headline)
    chosen = registry.model_for(Capability(kind.value), provider, model)
    spec = AssetSpec(kind=kind, provider=provider, model=chosen, prompt=prompt, voice=voice)
    if kind is AssetKind.image:
        spec = spec.model_copy(update={"aspect": aspect, "width": width, "height": height, "style": style})
    if kind is AssetKind.video:
        start = await _start_frame(image, prompt, aspect, style, out)
        spec = spec.model_copy(
            update={
                "aspect": aspect,
                "width": width,
                "height": height,
                "duration_s": duration_s,
                "fps": 24,
                "camera_motion": camera_motion,
                "style": style,
                "inputs": (start,),
            }
        )
    return await stored(generate, out, spec, out=out, campaign_id=ADHOC, story_id=kind.value)


async def _start_frame(image: str | None, prompt: str, aspect: Aspect, style: Style, out: str) -> InputRef:
    if image and image.startswith(("http://", "https://")):
        # A link is passed on as it is (vendors that need public URLs take it); its text stands in for content.
        return InputRef(role="keyframe", uri=image, url=image, sha256=sha256_bytes(image.encode()))
    if image:
        path = Path(image).resolve()
        return InputRef(role="keyframe", uri=path.as_uri(), sha256=sha256_file(path))
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
