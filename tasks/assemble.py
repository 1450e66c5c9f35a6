"""Cut a channel's stories into one reel and store it under exports/."""

from __future__ import annotations

import tempfile
from pathlib import Path

from prefect import task

from cutroom.assembly import Cut, assemble_reel
from cutroom.brief import Brand
from cutroom.exports import ReelPlan
from cutroom.manifest import Export
from cutroom.storage import export_key, open_storage, sha256_file
from tasks.policy import in_thread, key_on, local_slots


def _assemble(
    reel: ReelPlan, brand: Brand, out: str, campaign_id: str, crossfade_s: float, end_card_s: float
) -> Export:
    storage = open_storage(out)

    def local(uri: str) -> Path:
        return storage.local_path(storage.key_of(uri))

    cuts = [
        Cut(
            story_id=r.story_id,
            clips=[local(c.uri) for c in r.clips],
            voice=local(r.voice.uri) if r.voice else None,
            words=r.voice.words if r.voice else [],
        )
        for r in reel.stories
    ]
    with tempfile.TemporaryDirectory() as tmp, local_slots():
        target = Path(tmp) / "reel.mp4"
        made = assemble_reel(
            cuts, reel.format, brand, reel.cta, target, crossfade_s=crossfade_s, end_card_s=end_card_s
        )
        key = export_key(campaign_id, reel.channel.value, reel.format.aspect.slug)
        uri = storage.put_file(key, target, "video/mp4")
        digest = sha256_file(target)
    return Export(
        channel=reel.channel,
        aspect=reel.format.aspect,
        uri=uri,
        sha256=digest,
        duration_s=made.info.duration_s or 0.0,
        width=made.info.width or reel.format.width,
        height=made.info.height or reel.format.height,
        stories=made.stories,
    )


@task(
    name="assemble-reel",
    task_run_name="reel-{reel.channel}-{reel.format.aspect}",
    retries=1,
    cache_key_fn=key_on("reel", "brand", "out", "campaign_id", "crossfade_s", "end_card_s"),
    persist_result=True,
)
async def assemble(
    reel: ReelPlan, brand: Brand, out: str, campaign_id: str, crossfade_s: float, end_card_s: float
) -> Export:
    return await in_thread(_assemble, reel, brand, out, campaign_id, crossfade_s, end_card_s)
