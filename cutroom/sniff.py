"""What a file is, read from its first bytes, never from its name: a `.png` that is a text file is no image."""

from __future__ import annotations

from pathlib import Path

#: Leading bytes of each media type Cutroom reads or hands to a vendor.
_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"ID3", 0, "audio/mpeg"),
    (b"OggS", 0, "audio/ogg"),
    (b"fLaC", 0, "audio/flac"),
    (b"\x1aE\xdf\xa3", 0, "video/webm"),
)
#: MP4/MOV brands that are audio only.
_AUDIO_BRANDS = {b"M4A ", b"M4B "}


def sniff(head: bytes) -> str | None:
    """The MIME type of media starting with `head` (the first 64 bytes do), or None when it is not media."""
    for magic, offset, mime in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return mime
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[4:8] == b"ftyp":
        return "audio/mp4" if head[8:12] in _AUDIO_BRANDS else "video/mp4"
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "audio/mpeg"  # an MPEG audio frame without an ID3 tag
    return None


def sniff_file(path: Path) -> str | None:
    with path.open("rb") as file:
        return sniff(file.read(64))
