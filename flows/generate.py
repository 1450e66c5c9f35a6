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
    voice: str | None = None,
    headline: str = "",
    palette: list[str] | None = None,
    out: str = "cutroom-out",
) -> Asset:
    """Make one image, clip or voice-over, or work on a source (upscale, reframe, …).

    Images are files, http(s) URLs, or 'provider:job_id' of an earlier generation (to extend or edit it).
    A new clip with no image starts from a generated keyframe.
    """
    width, height = SIZES[aspect]
    style = Style(brand="", palette=tuple(palette or ("#1F2937", "#F59E0B", "#F9FAFB")), headline=headline)
    chosen = registry.model_for(Capability(kind.value), provider, model)
    spec = AssetSpec(kind=kind, provider=provider, model=chosen, prompt=prompt, voice=voice)
    if kind is not AssetKind.speech:
        spec = spec.model_copy(update={"aspect": aspect, "width": width, "height": height, "style": style})
    if operation is not None:
        spec = spec.model_copy(
            update={"operation": operation, "inputs": (input_ref(source or "", "source"),)}
        )
    elif kind is AssetKind.video:
        start = await _start_frame(image, prompt, aspect, style, out)
        ending = (input_ref(end_image, "last_frame"),) if end_image else ()
        spec = spec.model_copy(
            update={
                "duration_s": duration_s,
                "fps": 24,
                "camera_motion": camera_motion,
                "loop": loop,
                "inputs": (start, *ending),
            }
        )
    return await stored(generate, out, spec, out=out, campaign_id=ADHOC, story_id=kind.value)


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
