"""Local storage: atomic, idempotent writes in the layout of DESIGN.md."""

from __future__ import annotations

import os

import pytest

from cutroom.assets import AssetKind
from cutroom.storage import LocalStorage, asset_key, export_key, open_storage, path_of, put_written


def test_layout_keys():
    assert (
        asset_key("c", "s1", AssetKind.video, "ab" * 32, "video/mp4")
        == f"campaigns/c/stories/s1/videos/{'ab' * 32}.mp4"
    )
    assert asset_key("c", "s1", AssetKind.speech, "cd", "audio/wav") == "campaigns/c/stories/s1/audio/cd.wav"
    assert export_key("c", "tiktok", "9x16") == "campaigns/c/exports/tiktok-9x16.mp4"


def test_put_is_atomic_and_round_trips(tmp_path):
    storage = LocalStorage(tmp_path)
    uri = storage.put_bytes("campaigns/c/a.bin", b"hello", "application/octet-stream")
    assert path_of(uri) == tmp_path / "campaigns/c/a.bin"
    assert storage.key_of(uri) == "campaigns/c/a.bin" and storage.read_bytes("campaigns/c/a.bin") == b"hello"
    assert [p.name for p in (tmp_path / "campaigns/c").iterdir()] == [
        "a.bin"
    ]  # no temporary file left behind


def test_same_bytes_again_leave_the_object_untouched(tmp_path):
    storage = LocalStorage(tmp_path)
    storage.put_bytes("k.json", b"{}", "application/json")
    target = tmp_path / "k.json"
    os.utime(target, (1, 1))
    storage.put_bytes("k.json", b"{}", "application/json")
    assert target.stat().st_mtime == 1
    storage.put_bytes("k.json", b"[]", "application/json")
    assert target.read_bytes() == b"[]"


def test_a_page_written_again_with_the_same_bytes_leaves_the_object_untouched(tmp_path):
    storage = LocalStorage(tmp_path / "out")
    put_written(storage, "index.html", lambda fh: fh.writelines([b"<p>", b"hi"]), "text/html")
    target = tmp_path / "out" / "index.html"
    os.utime(target, (1, 1))
    put_written(storage, "index.html", lambda fh: fh.write(b"<p>hi"), "text/html")
    assert target.stat().st_mtime == 1
    put_written(storage, "index.html", lambda fh: fh.write(b"<p>ho"), "text/html")
    assert target.read_bytes() == b"<p>ho"


def test_a_failed_write_leaves_no_partial_object(tmp_path):
    storage = LocalStorage(tmp_path)
    storage.put_bytes("k", b"old", "text/plain")

    with pytest.raises(OSError):
        storage.put_file("k", tmp_path / "missing-source", "text/plain")
    assert storage.read_bytes("k") == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k"]


def test_s3_locations_need_a_bucket(tmp_path):
    with pytest.raises(ValueError, match="needs a bucket"):
        open_storage("s3://")
    assert isinstance(open_storage(tmp_path), LocalStorage)


def test_a_spec_key_ignores_fields_left_at_their_default():
    from cutroom.assets import AssetSpec

    plain = AssetSpec(kind=AssetKind.image, provider="local", model="m", prompt="p")
    assert (
        plain.key()
        == AssetSpec(kind=AssetKind.image, provider="local", model="m", prompt="p", loop=False).key()
    )
    assert (
        plain.key()
        != AssetSpec(kind=AssetKind.image, provider="local", model="m", prompt="p", loop=True).key()
    )
