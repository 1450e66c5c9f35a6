"""The ffmpeg that imageio-ffmpeg bundles, and reading what a media file holds (there is no ffprobe)."""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path

from pydantic import BaseModel


class MediaError(RuntimeError):
    pass


@cache
def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def run_ffmpeg(args: list[str], *, what: str) -> None:
    """Run the bundled ffmpeg; a failure raises MediaError naming the step and ffmpeg's last words."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise MediaError(f"ffmpeg failed while {what}: {tail}")


class MediaInfo(BaseModel):
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    fps: float | None = None
    has_video: bool = False
    has_audio: bool = False


def probe(path: Path | str) -> MediaInfo:
    from moviepy.video.io.ffmpeg_reader import ffmpeg_parse_infos

    try:
        info = ffmpeg_parse_infos(str(path), decode_file=False)
    except (OSError, IndexError) as exc:
        raise MediaError(f"cannot read media file {path}: {exc}") from exc
    size = info.get("video_size") or [None, None]
    return MediaInfo(
        width=size[0],
        height=size[1],
        duration_s=info.get("duration"),
        fps=info.get("video_fps"),
        has_video=bool(info.get("video_found")),
        has_audio=bool(info.get("audio_found")),
    )
