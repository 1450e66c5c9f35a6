"""Where campaign media lives: content-addressed, written atomically, laid out as in DESIGN.md."""

from __future__ import annotations

import functools
import getpass
import hashlib
import io
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TypeVar
from urllib.parse import unquote, urlparse

from cutroom import stopping
from cutroom.assets import AssetKind

T = TypeVar("T")

MIME_EXT = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
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
    def put_bytes(
        self,
        key: str,
        data: bytes,
        content_type: str,
        *,
        metadata: dict[str, str] | None = None,
        replace: bool = False,
    ) -> str: ...
    def put_file(
        self, key: str, path: Path, content_type: str, *, metadata: dict[str, str] | None = None
    ) -> str: ...
    def read_bytes(self, key: str) -> bytes: ...
    def local_path(self, key: str) -> Path: ...
    def keys(self, prefix: str) -> list[str]: ...
    def versions(self, prefix: str) -> dict[str, str]: ...


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

    def keys(self, prefix: str) -> list[str]:
        """Every stored key under a folder prefix, sorted; half-written temporaries are not keys."""
        folder = self.root / prefix
        if not folder.is_dir():
            return []
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in folder.rglob("*")
            if p.is_file() and not p.name.startswith(".part-")
        )

    def versions(self, prefix: str) -> dict[str, str]:
        """Every key under a folder prefix with a tag that changes whenever its bytes do: their MD5, as S3's
        ETag of a one-part object (a file on disk is cheap to read again; its times are too coarse to trust)."""
        return {key: hashlib.md5((self.root / key).read_bytes()).hexdigest() for key in self.keys(prefix)}

    def put_bytes(
        self,
        key: str,
        data: bytes,
        content_type: str,
        *,
        metadata: dict[str, str] | None = None,
        replace: bool = False,
    ) -> str:
        """Store data at key; the same bytes already there are left untouched (`replace`: a record that changes
        on every write skips that check). Metadata is ignored here."""
        target = self.root / key
        if (
            not replace
            and target.is_file()
            and target.stat().st_size == len(data)
            and sha256_file(target) == sha256_bytes(data)
        ):
            return self.uri(key)
        _write_atomically(target, lambda fh: fh.write(data))
        return self.uri(key)

    def put_file(
        self, key: str, path: Path, content_type: str, *, metadata: dict[str, str] | None = None
    ) -> str:
        """Store a file at key; the same bytes already there are left untouched, as put_bytes leaves them."""
        target = self.root / key
        path = Path(path)
        if path.resolve() == target or (
            target.is_file()
            and target.stat().st_size == path.stat().st_size
            and sha256_file(target) == sha256_file(path)
        ):
            return self.uri(key)
        with path.open("rb") as src:
            _write_atomically(target, lambda fh: shutil.copyfileobj(src, fh, 1 << 20))
        return self.uri(key)


def _write_atomically(target: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write beside the target, then rename over it: a crash never leaves half an object."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with _partial(target.parent) as tmp:
        with tmp.open("wb") as fh:
            write(fh)
        os.replace(tmp, target)


#: Temporary files being written now; a process that must exit at once deletes them (discard_partial_writes).
_writing: set[Path] = set()
_writing_lock = threading.Lock()
_closed = False


@contextmanager
def _partial(folder: Path) -> Iterator[Path]:
    """A fresh `.part-` file in `folder`, deleted unless renamed away by the time the block ends."""
    with _writing_lock:
        if _closed:  # the process is exiting: a write begun now could not finish
            raise stopping.Stopped("storage closed: the process is exiting")
        fd, name = tempfile.mkstemp(dir=folder, prefix=".part-")
        tmp = Path(name)
        _writing.add(tmp)
    os.close(fd)
    try:
        yield tmp
    finally:
        with _writing_lock:
            _writing.discard(tmp)
        tmp.unlink(missing_ok=True)


def discard_partial_writes() -> int:
    """For a process about to exit mid-write: delete the temporary files of writes under way, so no
    half-written file stays behind (their rename then fails), and begin no new one. Returns how many."""
    global _closed
    with _writing_lock:
        _closed = True
        for tmp in _writing:
            tmp.unlink(missing_ok=True)
        return len(_writing)


def path_of(uri: str) -> Path:
    """The local path of a file:// URI."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        raise ValueError(f"not a local file URI: {uri}")
    return Path(unquote(parsed.path))


MiB = 1 << 20
#: S3 refuses multipart parts smaller than 5 MiB (except the last).
_MIN_PART = 5 * MiB


def split_s3(location: str) -> tuple[str, str]:
    """Bucket and prefix (no slashes at either end) of an s3://bucket/prefix location."""
    parsed = urlparse(location)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"an S3 location needs a bucket, like s3://bucket/prefix; got {location!r}")
    return parsed.netloc, parsed.path.strip("/")


def unreachable(exc: BaseException) -> bool:
    """Whether a storage error means the endpoint is away for now (worth waiting out), not a refusal."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, ConnectionError | HTTPClientError):
        return True
    if isinstance(exc, ClientError):
        return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500
    return False


#: The most tries of one storage call while its endpoint is away (with patience_s, the time it may take).
S3_TRIES = 20


class StorageUnavailable(Exception):
    """The storage endpoint stayed away past our patience: what was given up on, where, after how long."""


def _user_cache_root() -> Path:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # containers often run a uid with no passwd entry
        user = str(os.getuid())
    return Path(tempfile.gettempdir()) / f"cutroom-s3-cache-{user}"


def _aws_environment() -> tuple[tuple[str, str], ...]:
    """The AWS_* variables boto3 reads (endpoint, keys, region, profile), as a key for the client they make."""
    return tuple(sorted((name, value) for name, value in os.environ.items() if name.startswith("AWS_")))


#: Held while a client is looked up or built: lru_cache alone lets every thread that misses build its own.
_CLIENT_LOCK = threading.Lock()


def _s3_client(environment: tuple[tuple[str, str], ...]) -> Any:
    """One S3 client per AWS configuration, shared by every S3Storage of the process (boto3 clients are
    thread-safe): building one costs ~0.1 s of CPU, which a storage opened per call paid hundreds of times per
    campaign, on the event loop too, and ≈ 14 MiB (its session loads botocore's endpoint and S3 models anew).
    Built once under a lock: 16 stories opening the campaign's storage at once had built 16 (+218 MiB).
    Endpoint and keys come from AWS_ENDPOINT_URL / AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY via boto3;
    `environment` is those variables, so a change to them makes a new client."""
    with _CLIENT_LOCK:
        return _built_s3_client(environment)


@functools.lru_cache(maxsize=8)
def _built_s3_client(environment: tuple[tuple[str, str], ...]) -> Any:
    import boto3
    from botocore.config import Config

    values = dict(environment)
    region = values.get("AWS_REGION") or values.get("AWS_DEFAULT_REGION")
    # Few retries: a bad digest or dead endpoint won't heal, and legacy mode spends ~10 s retrying it.
    config = Config(
        signature_version="s3v4",  # SigV4 presigned links too: R2 and newer AWS regions refuse SigV2
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=5,
        read_timeout=60,
        # Every put carries a signed SHA-256 checksum header the server verifies; signing the payload too
        # (botocore does on plain-http endpoints) would hash every byte a second time.
        s3={"payload_signing_enabled": False},
        # Stories of a campaign share the client from many threads at once.
        max_pool_connections=64,
    )
    return boto3.session.Session().client("s3", region_name=region, config=config)


class S3Storage:
    """An S3 bucket (AWS, SeaweedFS, MinIO, R2) under a prefix, configured by the standard AWS_* variables.

    Every put carries a SHA-256 checksum the server verifies, records the content's sha256 in the object
    metadata (so repeating a put is free), and goes multipart above `multipart_threshold`.
    """

    def __init__(
        self,
        location: str,
        *,
        cache_dir: Path | str | None = None,
        multipart_threshold: int = 16 * MiB,
        client: Any = None,
        patience_s: float = 120.0,
    ) -> None:
        # Imported here so local-folder runs don't pay boto3's import time.
        from boto3.s3.transfer import TransferConfig

        self.bucket, self.prefix = split_s3(location)
        self.cache_dir = Path(cache_dir) if cache_dir else _user_cache_root() / self.bucket
        self.client = client or _s3_client(_aws_environment())
        self.patience_s = patience_s
        part = max(multipart_threshold, _MIN_PART)
        self.transfer_config = TransferConfig(
            multipart_threshold=multipart_threshold, multipart_chunksize=part
        )

    def __repr__(self) -> str:
        return f"S3Storage({self.uri('').rstrip('/')!r})"

    def _patiently(self, what: str, call: Callable[[], T]) -> T:
        """Run a storage call, waiting out an endpoint that is away (a restart, a network blip) for up to
        `patience_s` and S3_TRIES tries: a finished generation is worth waiting for, and S3 writes are
        all-or-nothing. Past that, StorageUnavailable says what was given up on; a stopped run stops
        waiting."""
        began, pause, attempt = time.monotonic(), 0.5, 1
        while True:  # at most S3_TRIES times
            try:
                return call()
            except Exception as exc:
                if not unreachable(exc):
                    raise
                waited = time.monotonic() - began
                if waited + pause > self.patience_s or attempt == S3_TRIES:
                    if attempt == 1:
                        raise
                    where = self.uri("").rstrip("/")
                    raise StorageUnavailable(
                        f"gave up {what} at {where} after {attempt} tries in {waited:.0f} s: {exc}"
                    ) from exc
            stopping.sleep(pause)
            pause, attempt = min(pause * 2, 8.0), attempt + 1

    def object_key(self, key: str) -> str:
        """The bucket key for a layout key."""
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.object_key(key)}"

    def key_of(self, uri: str) -> str:
        bucket, path = split_s3(uri)
        head = f"{self.prefix}/" if self.prefix else ""
        if bucket != self.bucket or not path.startswith(head) or path == head.rstrip("/"):
            raise ValueError(f"{uri} is not inside {self.uri('')}")
        return path[len(head) :]

    def _head(self, key: str) -> dict[str, Any] | None:
        """The object's headers, or None when it does not exist; any other failure raises."""
        from botocore.exceptions import ClientError

        try:
            return self._patiently(
                f"checking {key}",
                lambda: self.client.head_object(Bucket=self.bucket, Key=self.object_key(key)),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def put_bytes(
        self,
        key: str,
        data: bytes,
        content_type: str,
        *,
        metadata: dict[str, str] | None = None,
        replace: bool = False,
    ) -> str:
        """Store data at key; the same bytes already there (by recorded sha256) are not uploaded again
        (`replace`: a record that changes on every write skips that HEAD request)."""
        return self._put(key, data, sha256_bytes(data), content_type, metadata, check=not replace)

    def put_file(
        self, key: str, path: Path, content_type: str, *, metadata: dict[str, str] | None = None
    ) -> str:
        """Store a file at key; the same bytes already there (by recorded sha256) are not uploaded again."""
        path = Path(path)
        return self._put(key, path, sha256_file(path), content_type, metadata)

    def _put(
        self,
        key: str,
        body: bytes | Path,
        digest: str,
        content_type: str,
        metadata: dict[str, str] | None,
        check: bool = True,
    ) -> str:
        head = self._head(key) if check else None
        if head is not None and head.get("Metadata", {}).get("sha256") == digest:
            return self.uri(key)
        extra = {
            "ContentType": content_type,
            "Metadata": {**(metadata or {}), "sha256": digest},
            "ChecksumAlgorithm": "SHA256",
        }
        target = (self.bucket, self.object_key(key))

        def upload() -> None:
            # Each attempt sends the whole body. A file goes by name: s3transfer then reads each part in
            # the worker thread that sends it, instead of copying it through memory here first.
            if isinstance(body, Path):
                self.client.upload_file(str(body), *target, ExtraArgs=extra, Config=self.transfer_config)
            else:
                self.client.upload_fileobj(
                    io.BytesIO(body), *target, ExtraArgs=extra, Config=self.transfer_config
                )

        # PutObject is all-or-nothing; on a failed multipart upload s3transfer aborts the upload.
        self._patiently(f"storing {key}", upload)
        # The key now holds new bytes, so a cached copy of the old ones must go.
        self._cache_path(key).unlink(missing_ok=True)
        return self.uri(key)

    def read_bytes(self, key: str) -> bytes:
        # ChecksumMode makes botocore verify the returned bytes against the stored SHA-256.
        return self._patiently(
            f"reading {key}",
            lambda: self.client.get_object(
                Bucket=self.bucket, Key=self.object_key(key), ChecksumMode="ENABLED"
            )["Body"].read(),
        )

    def keys(self, prefix: str) -> list[str]:
        """Every stored key under a folder prefix, sorted (S3 lists in key order)."""
        return list(self.versions(prefix))

    def versions(self, prefix: str) -> dict[str, str]:
        """Every key under a folder prefix with its ETag, from the same listing: a tag that changes whenever the
        object's bytes do, without reading them."""
        head = f"{self.object_key(prefix).rstrip('/')}/"
        strip = len(self.object_key(""))
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=head)
        return self._patiently(
            f"listing {prefix}",
            lambda: {
                item["Key"][strip:]: item["ETag"].strip('"')
                for page in pages
                for item in page.get("Contents", [])
            },
        )

    def _cache_path(self, key: str) -> Path:
        return self.cache_dir / self.object_key(key)

    def local_path(self, key: str) -> Path:
        """A local copy of the object, downloaded once; content-addressed keys never change underneath it."""
        target = self._cache_path(key)
        if target.is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with _partial(target.parent) as tmp:
            self._patiently(
                f"downloading {key}",
                lambda: self.client.download_file(
                    self.bucket, self.object_key(key), str(tmp), Config=self.transfer_config
                ),
            )
            os.replace(tmp, target)
        return target

    def presigned_url(self, key: str, expires_s: int = 3600) -> str:
        """A GET link anyone can use until it expires."""
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self.object_key(key)}, ExpiresIn=expires_s
        )


def open_storage(location: str | Path) -> Storage:
    """A storage backend from a location: s3://bucket/prefix for S3, anything else is a local folder."""
    text = str(location)
    if text.startswith("s3:"):
        return S3Storage(text)
    return LocalStorage(text)


def put_written(storage: Storage, key: str, write: Callable[[BinaryIO], object], content_type: str) -> str:
    """Store what `write` writes to a file at key, without holding it whole in memory: a large campaign's
    manifest and report run to tens of megabytes, which a text and its bytes would each hold again."""
    with tempfile.TemporaryDirectory(prefix="cutroom-put-") as folder:
        path = Path(folder) / "object"
        with path.open("wb") as fh:
            write(fh)
        return storage.put_file(key, path, content_type)
