"""S3Storage against a real S3 server on loopback (SeaweedFS), which checks checksums and signatures."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import uuid
from collections import Counter

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from cutroom.storage import MiB, S3Storage, open_storage, sha256_bytes

# Move to tests/conftest.py alongside tests.simulator_fixture.


def _b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


COUNTER = "count-calls"


def _count_calls(storage: S3Storage) -> Counter[str]:
    """Every S3 operation the storage's client sends from now on, by name (until the next count: the process's
    storages share their client)."""
    calls: Counter[str] = Counter()
    storage.client.meta.events.unregister("before-call.s3", unique_id=COUNTER)
    storage.client.meta.events.register(
        "before-call.s3", lambda model, **_: calls.update([model.name]), unique_id=COUNTER
    )
    return calls


@pytest.fixture
def storage(s3, tmp_path) -> S3Storage:
    # A fresh prefix per test keeps tests independent on the shared session bucket.
    return S3Storage(f"s3://{s3.bucket}/t-{uuid.uuid4().hex[:8]}", cache_dir=tmp_path / "cache")


def _raw(storage: S3Storage, key: str) -> dict:
    return storage.client.head_object(
        Bucket=storage.bucket, Key=storage.object_key(key), ChecksumMode="ENABLED"
    )


def test_bytes_and_files_round_trip(storage, tmp_path):
    uri = storage.put_bytes("campaigns/c/a.bin", b"hello", "application/octet-stream")
    assert uri == storage.uri("campaigns/c/a.bin")
    assert storage.read_bytes("campaigns/c/a.bin") == b"hello"

    source = tmp_path / "clip.mp4"
    source.write_bytes(os.urandom(300_000))
    storage.put_file("campaigns/c/clip.mp4", source, "video/mp4")
    assert storage.read_bytes("campaigns/c/clip.mp4") == source.read_bytes()


def test_storages_opened_at_once_from_many_threads_share_one_client(monkeypatch):
    # A configuration no storage of this process has used, so its client is built in the burst. A client holds
    # ≈ 14 MiB of botocore models: 16 stories opening their storage at once had built 16.
    monkeypatch.setenv("AWS_CUTROOM_TEST_BURST", uuid.uuid4().hex)
    start, opened = threading.Barrier(16), []

    def open_one() -> None:
        start.wait()
        opened.append(open_storage("s3://campaigns/burst"))

    threads = [threading.Thread(target=open_one) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(opened) == 16 and len({id(storage.client) for storage in opened}) == 1


def test_uri_and_key_of_are_inverse_and_reject_other_locations(s3):
    storage = S3Storage(f"s3://{s3.bucket}/some/prefix/")
    assert storage.uri("campaigns/c/x.png") == f"s3://{s3.bucket}/some/prefix/campaigns/c/x.png"
    assert storage.key_of(storage.uri("campaigns/c/x.png")) == "campaigns/c/x.png"
    with pytest.raises(ValueError, match="is not inside"):
        storage.key_of("s3://other-bucket/some/prefix/x.png")
    with pytest.raises(ValueError, match="is not inside"):
        storage.key_of(f"s3://{s3.bucket}/some/prefixed/x.png")
    bare = S3Storage(f"s3://{s3.bucket}")
    assert bare.key_of(bare.uri("a/b.json")) == "a/b.json"


def test_open_storage_picks_s3_and_wants_a_bucket(s3, tmp_path):
    assert isinstance(open_storage(f"s3://{s3.bucket}/p"), S3Storage)
    for location in ("s3://", "s3:///prefix"):
        with pytest.raises(ValueError, match="needs a bucket"):
            open_storage(location)


def test_exists_is_false_only_for_a_missing_object(storage, s3):
    assert not storage.exists("nope.json")
    storage.put_bytes("yes.json", b"{}", "application/json")
    assert storage.exists("yes.json")

    client = boto3.session.Session().client("s3", aws_secret_access_key="wrong", aws_access_key_id="wrong")
    wrong_keys = S3Storage(storage.uri(""), client=client)
    with pytest.raises(ClientError):
        wrong_keys.exists("yes.json")


def test_content_type_and_metadata_reach_the_object(storage):
    storage.put_bytes("m.png", b"\x89PNG", "image/png", metadata={"story": "s1", "model": "flux"})
    head = _raw(storage, "m.png")
    assert head["ContentType"] == "image/png"
    assert head["Metadata"] == {"story": "s1", "model": "flux", "sha256": sha256_bytes(b"\x89PNG")}


def test_sha256_checksum_is_sent_stored_and_enforced(storage):
    storage.put_bytes("c.bin", b"checked", "application/octet-stream")
    assert _raw(storage, "c.bin")["ChecksumSHA256"] == _b64_sha256(b"checked")

    # One attempt: botocore would otherwise retry the BadDigest for seconds.
    strict = boto3.session.Session().client(
        "s3", config=Config(retries={"max_attempts": 1, "mode": "standard"})
    )
    with pytest.raises(ClientError) as refused:
        strict.put_object(
            Bucket=storage.bucket,
            Key=storage.object_key("bad.bin"),
            Body=b"checked",
            ChecksumSHA256=_b64_sha256(b"something else"),
        )
    assert refused.value.response["Error"]["Code"] in (
        "BadDigest",
        "XAmzContentChecksumMismatch",
        "InvalidDigest",
    )
    assert not storage.exists("bad.bin")


def test_large_files_go_multipart_with_checksums_and_arrive_intact(s3, tmp_path):
    storage = S3Storage(f"s3://{s3.bucket}/mp-{uuid.uuid4().hex[:8]}", multipart_threshold=5 * MiB)
    calls = _count_calls(storage)
    source = tmp_path / "big.mp4"
    source.write_bytes(os.urandom(12 * MiB))
    storage.put_file("big.mp4", source, "video/mp4")

    assert calls["CreateMultipartUpload"] == 1 and calls["UploadPart"] == 3 and calls["PutObject"] == 0
    head = _raw(storage, "big.mp4")
    assert head["ETag"].strip('"').endswith("-3")
    # A composite checksum: the SHA-256 of each 5 MiB part's SHA-256, so every part carried and passed one.
    data = source.read_bytes()
    part_digests = b"".join(
        hashlib.sha256(data[i : i + 5 * MiB]).digest() for i in range(0, len(data), 5 * MiB)
    )
    assert head["ChecksumSHA256"] == f"{_b64_sha256(part_digests)}-3"
    assert head["ContentType"] == "video/mp4"
    assert storage.read_bytes("big.mp4") == source.read_bytes()


def test_repeating_a_put_uploads_nothing(storage):
    calls = _count_calls(storage)
    storage.put_bytes("same.json", b'{"a": 1}', "application/json")
    first = _raw(storage, "same.json")["LastModified"]
    storage.put_bytes("same.json", b'{"a": 1}', "application/json")
    assert calls["PutObject"] == 1
    assert _raw(storage, "same.json")["LastModified"] == first

    storage.put_bytes("same.json", b'{"a": 2}', "application/json")
    assert calls["PutObject"] == 2
    assert storage.read_bytes("same.json") == b'{"a": 2}'


def test_local_path_downloads_once(storage):
    storage.put_bytes("v.mp4", b"frames", "video/mp4")
    calls = _count_calls(storage)
    first = storage.local_path("v.mp4")
    second = storage.local_path("v.mp4")
    assert first == second and first.read_bytes() == b"frames"
    assert first.is_relative_to(storage.cache_dir)
    assert calls["GetObject"] == 1

    # Overwriting through this storage drops the cached copy, so the next local_path fetches the new bytes.
    storage.put_bytes("v.mp4", b"new frames", "video/mp4")
    assert storage.local_path("v.mp4").read_bytes() == b"new frames"


def test_presigned_get_works_and_tampering_is_refused(storage):
    storage.put_bytes("share.html", b"<p>hi</p>", "text/html")
    url = storage.presigned_url("share.html", expires_s=60)
    ok = httpx.get(url)
    assert ok.status_code == 200 and ok.content == b"<p>hi</p>"
    assert httpx.get(url.replace("share.html", "other.html")).status_code == 403
    assert httpx.get(url.replace("X-Amz-Expires=60", "X-Amz-Expires=99999")).status_code == 403


def _incomplete_uploads(storage: S3Storage) -> list[dict]:
    listing = storage.client.list_multipart_uploads(Bucket=storage.bucket, Prefix=storage.object_key(""))
    return listing.get("Uploads", [])


def test_a_failed_multipart_upload_is_aborted(s3, tmp_path):
    storage = S3Storage(f"s3://{s3.bucket}/abort-{uuid.uuid4().hex[:8]}", multipart_threshold=5 * MiB)
    source = tmp_path / "big.mp4"
    source.write_bytes(os.urandom(12 * MiB))

    def fail(**_: object) -> None:
        raise RuntimeError("disk on fire")

    storage.client.meta.events.register("after-call.s3.UploadPart", fail)
    try:
        with pytest.raises(RuntimeError, match="disk on fire"):
            storage.put_file("big.mp4", source, "video/mp4")
    finally:  # the process's storages share the client
        storage.client.meta.events.unregister("after-call.s3.UploadPart", fail)
    assert not storage.exists("big.mp4")
    assert _incomplete_uploads(storage) == []


def test_a_multipart_upload_cut_off_by_the_server_leaves_no_object(s3, tmp_path):
    storage = S3Storage(
        f"s3://{s3.bucket}/cut-{uuid.uuid4().hex[:8]}", multipart_threshold=5 * MiB, patience_s=0
    )
    source = tmp_path / "long.mp4"
    source.write_bytes(os.urandom(60 * MiB))
    stopped = threading.Event()

    def stop_after_first_part(**_: object) -> None:
        if not stopped.is_set():
            stopped.set()
            s3.stop()

    storage.client.meta.events.register("after-call.s3.UploadPart", stop_after_first_part)
    try:
        with pytest.raises(Exception):  # noqa: B017 - connection errors surface as several botocore types
            storage.put_file("long.mp4", source, "video/mp4")
    finally:
        storage.client.meta.events.unregister("after-call.s3.UploadPart", stop_after_first_part)
        s3.start()
    assert stopped.is_set()
    assert not storage.exists("long.mp4")
    # The abort could not reach a dead server: one invisible upload stays until a lifecycle rule expires it.
    assert len(_incomplete_uploads(storage)) == 1

    storage.put_file("long.mp4", source, "video/mp4")
    assert storage.read_bytes("long.mp4") == source.read_bytes()


def test_an_upload_waits_out_a_server_restart_and_lands_whole(s3, tmp_path):
    storage = S3Storage(f"s3://{s3.bucket}/restart-{uuid.uuid4().hex[:8]}", multipart_threshold=5 * MiB)
    source = tmp_path / "long.mp4"
    source.write_bytes(os.urandom(30 * MiB))
    stopped = threading.Event()

    def stop_after_first_part(**_: object) -> None:
        if not stopped.is_set():
            stopped.set()
            s3.stop()
            threading.Timer(3.0, s3.start).start()  # back after three seconds, as a restarted server is

    storage.client.meta.events.register("after-call.s3.UploadPart", stop_after_first_part)
    try:
        uri = storage.put_file("long.mp4", source, "video/mp4")
    finally:
        storage.client.meta.events.unregister("after-call.s3.UploadPart", stop_after_first_part)
    assert stopped.is_set() and uri == storage.uri("long.mp4")
    assert storage.read_bytes("long.mp4") == source.read_bytes()
