"""The ffmpeg that imageio-ffmpeg bundles, and reading what a media file holds (there is no ffprobe)."""

from __future__ import annotations

import re
import subprocess
from contextlib import suppress
from functools import cache
from pathlib import Path

from pydantic import BaseModel


class MediaError(RuntimeError):
    pass


#: x264's fastest preset: every encode's when renders are drafts (CUTROOM_DRAFT_RENDERS).
DRAFT_PRESET = "ultrafast"


def x264_preset(final: str) -> str:
    """The x264 preset of an encode whose finished renders take `final`: DRAFT_PRESET for draft renders."""
    from cutroom.settings import settings

    return DRAFT_PRESET if settings().draft_renders else final


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
    return _media_info(info)


def probe_all(paths: list[Path]) -> list[MediaInfo]:
    """What each file holds, read by one ffmpeg start for them all; if any cannot be read, `probe` looks at each
    in turn so that MediaError names the first that cannot."""
    from moviepy.video.io.ffmpeg_reader import FFmpegInfosParser

    # file: so that no name is read as an option ("-x.mp4") or a protocol ("a:b.mp4").
    inputs = [arg for path in paths for arg in ("-i", f"file:{Path(path).absolute()}")]
    done = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", *inputs], stdin=subprocess.DEVNULL, capture_output=True
    )
    # ffmpeg describes each input it opened under "Input #k", and stops at the first it cannot open.
    described = re.split(r"^(?=Input #\d+)", done.stderr.decode(errors="replace"), flags=re.MULTILINE)[1:]
    if len(described) == len(paths):
        with suppress(Exception):  # moviepy's parser raises what it likes on what it does not know
            return [
                _media_info(FFmpegInfosParser(text, str(path)).parse())
                for text, path in zip(described, paths, strict=True)
            ]
    return [probe(path) for path in paths]


def _media_info(info: dict) -> MediaInfo:
    size = info.get("video_size") or [None, None]
    return MediaInfo(
        width=size[0],
        height=size[1],
        duration_s=info.get("duration"),
        fps=info.get("video_fps"),
        has_video=bool(info.get("video_found")),
        has_audio=bool(info.get("audio_found")),
    )


def last_frame(video: Path, out_png: Path) -> Path:
    """The video's final frame as a PNG, so a shot that continues the previous one can start from it."""
    out_png.unlink(missing_ok=True)  # so a stale PNG is never mistaken for this video's frame
    # Decode only the last second and reverse it, so the one PNG written is the final frame.
    run_ffmpeg(
        ["-sseof", "-1", "-i", str(video), "-map", "0:v:0", "-vf", "reverse", "-frames:v", "1", str(out_png)],
        what=f"extracting the last frame of {video}",
    )
    if not out_png.is_file():
        raise MediaError(f"no frame could be decoded from the end of {video}")
    return out_png
