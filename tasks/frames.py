"""A clip's last frame, stored as an image, so the next shot can continue from it."""

from __future__ import annotations

import tempfile
from pathlib import Path

from prefect import task

from cutroom.assets import Asset, AssetKind, InputRef
from cutroom.media import last_frame
from cutroom.storage import asset_key, open_storage, sha256_bytes
from tasks.policy import in_thread, key_on


def _extract(clip: Asset, out: str, campaign_id: str) -> InputRef:
    storage = open_storage(out)
    with tempfile.TemporaryDirectory() as tmp:
        png = last_frame(storage.local_path(storage.key_of(clip.uri)), Path(tmp) / "last.png")
        data = png.read_bytes()
    digest = sha256_bytes(data)
    key = asset_key(campaign_id, clip.story_id or "shared", AssetKind.image, digest, "image/png")
    return InputRef(role="first_frame", uri=storage.put_bytes(key, data, "image/png"), sha256=digest)


@task(
    name="last-frame",
    task_run_name="last-frame-{clip.story_id}",
    cache_key_fn=key_on("clip", "out", "campaign_id"),
    persist_result=True,
)
async def last_frame_of(clip: Asset, out: str, campaign_id: str) -> InputRef:
    return await in_thread(_extract, clip, out, campaign_id)
