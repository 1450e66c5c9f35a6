"""Vendor uploads remembered with the campaign's storage: the same bytes sent to a vendor once are reused by the
asset id it gave them, on a rerun and on any machine that reads the same storage.

A vendor that takes media as uploads of its own (HeyGen's audio and images) answers an asset id; sending the same
audio again on every run is slow and clutters the vendor's account. The record of an upload is kept in the
storage root, `uploads/<vendor>/<sha256>.json`, not in a local file, so it travels with the campaigns.

The generate task says where the records live (`with uploads_kept_in(storage, force=...)`), and the adapter asks
`uploaded(vendor, data, send)` without knowing about storage. Outside such a block every upload is sent: nothing
is remembered. `force` sends each upload again once (an asset deleted at the vendor), then keeps the new record.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import BaseModel, Field, ValidationError

from cutroom.storage import Storage, sha256_bytes

FOLDER = "uploads"


class Upload(BaseModel):
    """What a vendor answered for a set of bytes: its asset id and any other handle it gave them."""

    vendor: str
    sha256: str
    asset_id: str
    mime: str
    size: int = Field(ge=0)
    details: dict[str, str] = Field(
        default_factory=dict, description="Other handles the vendor gave the asset (HeyGen's image_key)."
    )
    uploaded_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    reused: bool = Field(default=False, exclude=True, description="Read from storage, not sent this time.")


#: What a send answers: the vendor's asset id and its other handles.
Sent = tuple[str, dict[str, str]]


@dataclass
class _Kept:
    storage: Storage
    force: bool
    #: Bytes sent again under `force` in this block: once is enough.
    resent: set[tuple[str, str]] = field(default_factory=set)


_kept: ContextVar[_Kept | None] = ContextVar("cutroom_uploads", default=None)


@contextmanager
def uploads_kept_in(storage: Storage, force: bool = False) -> Iterator[None]:
    """Within this block, vendor uploads are looked up in and recorded to `storage`; `force` sends them again."""
    token = _kept.set(_Kept(storage, force))
    try:
        yield
    finally:
        _kept.reset(token)


def upload_key(vendor: str, sha256: str) -> str:
    return f"{FOLDER}/{vendor}/{sha256}.json"


def uploaded(vendor: str, data: bytes, mime: str, send: Callable[[], Sent], *, again: bool = False) -> Upload:
    """The vendor's record of these bytes: the one kept in storage, else `send()`'s answer, kept for next time.
    `again` sends them whatever is kept (the vendor no longer knows the kept asset)."""
    digest = sha256_bytes(data)
    kept = _kept.get()
    if kept is not None and not again:
        resend = kept.force and (vendor, digest) not in kept.resent
        known = None if resend else _read(kept.storage, vendor, digest)
        if known is not None:
            return known.model_copy(update={"reused": True})
    asset_id, details = send()
    upload = Upload(
        vendor=vendor, sha256=digest, asset_id=asset_id, mime=mime, size=len(data), details=details
    )
    if kept is not None:
        kept.resent.add((vendor, digest))
        kept.storage.put_bytes(
            upload_key(vendor, digest),
            upload.model_dump_json(indent=2).encode(),
            "application/json",
            replace=True,
        )
    return upload


def _read(storage: Storage, vendor: str, digest: str) -> Upload | None:
    key = upload_key(vendor, digest)
    if not storage.exists(key):
        return None
    try:
        return Upload.model_validate(json.loads(storage.read_bytes(key)))
    except (ValueError, ValidationError):  # a damaged record: send again
        return None
