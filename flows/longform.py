"""Long-form guided audio: a narration script becomes one master track whose pauses are measured to the target."""

from __future__ import annotations

import asyncio

from prefect import flow

from cutroom.capabilities import Capability
from cutroom.longform import LongformAudio, clause_spec, parse_script
from providers import registry
from tasks.generate import generate
from tasks.limits import ensure_vendor_limits
from tasks.longform import stitch_master, validate_pauses
from tasks.policy import stored
from tasks.publish import publish_longform_report


@flow(name="longform_audio", flow_run_name="{campaign_id}")
async def longform_audio(
    script: str,
    voice: str | None = None,
    provider: str = "local",
    out: str = "cutroom-out",
    campaign_id: str = "longform",
) -> LongformAudio:
    """script → a clause per pause (spoken once each, cached on its words and voice) → the stitched, levelled
    master with a file per scene and a timing sheet → every pause measured in the master.

    `script` is the script's text (see cutroom.longform for the format); it is read in full, and refused with
    the line to fix, before anything is spoken.
    """
    parsed = parse_script(script)
    speech = registry.pick(Capability.speech, provider)
    await ensure_vendor_limits({provider})
    clips = await asyncio.gather(
        *(
            stored(
                generate,
                out,
                clause_spec(segment, speech, voice),
                out=out,
                campaign_id=campaign_id,
                story_id=scene.slug(number),
            )
            for number, scene in enumerate(parsed.scenes, start=1)
            for segment in scene.segments
        )
    )
    master = await stored(stitch_master, out, parsed, [clip.uri for clip in clips], out, campaign_id)
    made = await validate_pauses(master, out, campaign_id)
    await publish_longform_report(made, out, campaign_id)
    return made
