"""One asset on one provider, outside any campaign: `cutroom generate`, and the `generate` deployment."""

from __future__ import annotations

from prefect import flow

from cutroom.assets import Asset, InputRef
from cutroom.requests import AssetRequest
from tasks.generate import generate
from tasks.limits import ensure_vendor_limits
from tasks.policy import stored
from tasks.requests import asset_spec, check, keyframe_spec, needs_keyframe

#: Single assets live beside campaigns, in a campaign of their own.
ADHOC = "adhoc"


@flow(name="generate", flow_run_name="{request.kind}-{request.provider}")
async def generate_one(request: AssetRequest, out: str = "cutroom-out") -> Asset:
    """Make one image, clip or voice-over, or work on a source (upscale, reframe, enhance_frame_rate, …).

    Inputs are files, http(s) URLs, or 'provider:job_id' of an earlier generation (to extend or edit it). A new
    clip with no start image starts from a keyframe made first. The model's own settings (`options`) are
    checked against its card before anything is paid for.
    """
    check(request, links=out.startswith("s3://"))
    keyframe = None
    if needs_keyframe(request):
        first = keyframe_spec(request)
        await ensure_vendor_limits({request.provider, first.provider})
        made = await stored(generate, out, first, out=out, campaign_id=ADHOC, story_id="image")
        keyframe = InputRef(role="keyframe", uri=made.uri, sha256=made.sha256, url=made.source_url)
    else:
        await ensure_vendor_limits({request.provider})
    spec = asset_spec(request, keyframe)
    return await stored(generate, out, spec, out=out, campaign_id=ADHOC, story_id=request.kind.value)
