"""From what a user asked for (AssetRequest) to what a provider is asked to make (AssetSpec)."""

from __future__ import annotations

from pathlib import Path

from cutroom.assets import AssetKind, AssetSpec, InputRef, Style
from cutroom.capabilities import Capability
from cutroom.channels import SIZES
from cutroom.requests import AssetRequest
from cutroom.storage import sha256_bytes, sha256_file
from providers import declarations, registry
from providers.inputs import public_link


def model_of(request: AssetRequest) -> str:
    """The model named (checked against the provider's cards), else the provider's default, unless an operation
    is asked for that the default does not do: then the provider's first model whose card offers it."""
    capability = Capability(request.kind.value)
    chosen = registry.model_for(capability, request.provider, request.model)
    if request.model is not None or request.operation is None:
        return chosen
    cards = declarations.vendor(request.provider).cards(capability)
    if any(c.model == chosen and request.operation in c.operations for c in cards):
        return chosen
    offering = (c.model for c in cards if request.operation in c.operations and not c.retired)
    return next(offering, chosen)


def style_of(request: AssetRequest) -> Style:
    return Style(brand="", palette=request.palette, headline=request.headline)


def needs_keyframe(request: AssetRequest) -> bool:
    """A new clip named no start image: one is made first."""
    return request.kind is AssetKind.video and request.operation is None and request.image is None


def keyframe_spec(request: AssetRequest) -> AssetSpec:
    """The start image of a clip that names none: made by the first image provider ready (the free local one
    by default), or by the clip's own vendor when the API serving the clip's model takes images only as links it
    fetches (Luma's Dream Machine) and the vendor makes images — its own output link is then the clip's start."""
    vendor = declarations.vendor(request.provider)
    wants_link = vendor.serving(model_of(request)).links_only and Capability.image in vendor.adapters
    picked = registry.choose(Capability.image, [request.provider] if wants_link else []).name
    width, height = SIZES[request.aspect]
    return AssetSpec(
        kind=AssetKind.image,
        provider=picked,
        model=registry.model_for(Capability.image, picked, None),
        prompt=request.prompt,
        aspect=request.aspect,
        width=width,
        height=height,
        style=style_of(request),
    )


def asset_spec(request: AssetRequest, keyframe: InputRef | None = None) -> AssetSpec:
    """The spec of the asset asked for; a clip with no start image starts from `keyframe`."""
    spec = AssetSpec(
        kind=request.kind,
        provider=request.provider,
        model=model_of(request),
        prompt=request.prompt,
        voice=request.voice,
        options=request.options,
        fps=request.fps,
    )
    if request.kind is AssetKind.speech:
        return spec
    width, height = SIZES[request.aspect]
    inputs = [input_ref(value, role) for role, value in request.inputs()]
    if keyframe is not None:
        inputs.insert(0, keyframe)
    update = {"aspect": request.aspect, "width": width, "height": height, "style": style_of(request)}
    if request.kind is AssetKind.video and request.operation is None:
        update |= {"duration_s": request.duration_s, "fps": request.fps or 24, "loop": request.loop,
                   "camera_motion": request.camera_motion}  # fmt: skip
    return spec.model_copy(update={**update, "operation": request.operation, "inputs": tuple(inputs)})


#: Where a clip's start image will be, while the request is checked before the image is made.
PLANNED_KEYFRAME = InputRef(role="keyframe", uri="planned:keyframe", url="https://planned.invalid/keyframe.png",
                            sha256="0" * 64)  # fmt: skip


def check(request: AssetRequest, links: bool = False) -> None:
    """Everything that can be known before the first paid call: the provider, its model, the options, the
    inputs — for the keyframe a clip starts from as much as for the clip. With `links` (the work is on S3), a
    local input will be handed to the vendor as a presigned link."""
    if needs_keyframe(request):
        registry.check(keyframe_spec(request))
        spec = asset_spec(request, PLANNED_KEYFRAME)
    else:
        spec = asset_spec(request)
    if links:
        planned = tuple(
            ref.model_copy(update={"url": f"https://planned.invalid/{ref.sha256}"})
            if ref.uri.startswith("file:") and ref.url is None
            else ref
            for ref in spec.inputs
        )
        spec = spec.model_copy(update={"inputs": planned})
    vendor = declarations.vendor(spec.provider).serving(spec.model)
    if vendor.links_only:
        for ref in spec.inputs:
            if ref.uri.startswith("file:") and ref.url is None:
                public_link(ref, spec.provider, vendor.title)
    registry.check(spec)


def input_ref(value: str, role: str) -> InputRef:
    """An input from what a user typed: an http(s) URL, 'provider:job_id', or a file path."""
    if value.startswith(("http://", "https://")):
        # A link is passed on as it is (vendors that need public URLs take it); its text stands in for content.
        return InputRef(role=role, uri=value, url=value, sha256=sha256_bytes(value.encode()))
    if registry.is_job(value):
        return InputRef(role=role, uri=f"job:{value}", continues=value, sha256=sha256_bytes(value.encode()))
    path = Path(value).resolve()
    return InputRef(role=role, uri=path.as_uri(), sha256=sha256_file(path))
