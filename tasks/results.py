"""Prefect result storage on the campaign's own backend, so any process that can reach it can resume a run."""

from __future__ import annotations

import hashlib
from functools import partial

from prefect._internal.compatibility.async_dispatch import async_dispatch
from prefect.filesystems import WritableFileSystem
from pydantic import Field

from cutroom.storage import Storage, open_storage
from tasks.policy import off_loop

#: Beside the campaigns, out of the layout users browse.
RESULTS_PREFIX = ".cutroom/results"


class CampaignResults(WritableFileSystem):
    """Task results kept under `.cutroom/results/` of a campaign location (a folder or s3://bucket/prefix).

    Saved as a block (it holds only the location; S3 credentials stay in the AWS_* environment), so every
    process and worker that loads it reads and writes the same results.
    """

    _block_type_name = "Cutroom Campaign Results"
    _description = "Prefect task results stored beside Cutroom campaigns (local folder or S3)."

    location: str = Field(description="Where campaigns are written: a folder or s3://bucket/prefix.")

    def _storage(self) -> Storage:
        return open_storage(self.location)

    @staticmethod
    def _key(path: str) -> str:
        return f"{RESULTS_PREFIX}/{path.lstrip('/')}"

    # Prefect reads and writes results of async tasks from the event loop the stories share: off it.
    async def aread_path(self, path: str) -> bytes:
        return await off_loop(partial(self.read_path, path, _sync=True))

    @async_dispatch(aread_path)
    def read_path(self, path: str) -> bytes:
        storage = self._storage()
        key = self._key(path)
        if not storage.exists(key):
            raise ValueError(f"no result at {storage.uri(key)}")
        return storage.read_bytes(key)

    async def awrite_path(self, path: str, content: bytes) -> str:
        return await off_loop(partial(self.write_path, path, content, _sync=True))

    @async_dispatch(awrite_path)
    def write_path(self, path: str, content: bytes) -> str:
        # Prefect writes a result once per key and has already looked for it: no HEAD first.
        return self._storage().put_bytes(self._key(path), content, "application/octet-stream", replace=True)


def block_name(location: str) -> str:
    """One saved block per location, named from it (Prefect block names: lowercase, digits, dashes)."""
    return f"cutroom-{hashlib.sha256(location.encode()).hexdigest()[:16]}"


async def save_results_block(location: str) -> str:
    """Save the block for a location; returns the slug for PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK."""
    block = CampaignResults(location=location)
    name = block_name(location)
    await block.save(name, overwrite=True)
    return f"{block.get_block_type_slug()}/{name}"
