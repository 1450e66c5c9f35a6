"""Where campaign media lives: content-addressed, written atomically, laid out as in DESIGN.md."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import unquote, urlparse

from cutroom.assets import AssetKind

MIME_EXT = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "video/mp4": "mp4",
    "audio/wav": "wav",
    "audio/mpeg": "mp3",
    "application/json": "json",
    "text/html": "html",
}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# The layout, in one place.
def campaign_prefix(campaign_id: str) -> str:
    return f"campaigns/{campaign_id}"


def asset_key(campaign_id: str, story_id: str, kind: AssetKind, sha256: str, mime: str) -> str:
    return f"{campaign_prefix(campaign_id)}/stories/{story_id}/{kind.folder}/{sha256}.{MIME_EXT[mime]}"


def metadata_key(campaign_id: str, story_id: str, name: str) -> str:
    return f"{campaign_prefix(campaign_id)}/stories/{story_id}/metadata/{name}"


def export_key(campaign_id: str, channel: str, aspect_slug: str) -> str:
    return f"{campaign_prefix(campaign_id)}/exports/{channel}-{aspect_slug}.mp4"


class Storage(Protocol):
    """The one storage interface flows and tasks see; keys are layout paths, URIs name the backend."""

    def uri(self, key: str) -> str: ...
    def key_of(self, uri: str) -> str: ...
    def exists(self, key: str) -> bool: ...
    def put_bytes(self, key: str, data: bytes, content_type: str) -> str: ...
    def put_file(self, key: str, path: Path, content_type: str) -> str: ...
    def read_bytes(self, key: str) -> bytes: ...
    def local_path(self, key: str) -> Path: ...


class LocalStorage:
    """A folder on disk. Writes go to a temporary file first, so a crash never leaves half an object."""

    def __init__(self, root: Path | str):
        self.root = Path(root).resolve()

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def uri(self, key: str) -> str:
        return (self.root / key).as_uri()

    def key_of(self, uri: str) -> str:
        return path_of(uri).relative_to(self.root).as_posix()

    def exists(self, key: str) -> bool:
        return (self.root / key).is_file()

    def local_path(self, key: str) -> Path:
        return self.root / key

    def read_bytes(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def put_bytes(self, key: str, data: bytes, content_type: str) -> str:
        """Store data at key; the same bytes already there are left untouched."""
        target = self.root / key
        if (
            target.is_file()
            and target.stat().st_size == len(data)
            and sha256_file(target) == sha256_bytes(data)
        ):
            return self.uri(key)
        _write_atomically(target, lambda fh: fh.write(data))
        return self.uri(key)

    def put_file(self, key: str, path: Path, content_type: str) -> str:
        target = self.root / key
        if Path(path).resolve() != target:
            with Path(path).open("rb") as src:
                _write_atomically(target, lambda fh: shutil.copyfileobj(src, fh, 1 << 20))
        return self.uri(key)


def _write_atomically(target: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write beside the target, then rename over it: a crash never leaves half an object."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def path_of(uri: str) -> Path:
    """The local path of a file:// URI."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        raise ValueError(f"not a local file URI: {uri}")
    return Path(unquote(parsed.path))


def open_storage(location: str | Path) -> Storage:
    """A storage backend from a location: a folder path (s3:// arrives with durable execution)."""
    text = str(location)
    if text.startswith("s3://"):
        raise ValueError("S3 storage is not available yet; use a local folder for --out")
    return LocalStorage(text)
