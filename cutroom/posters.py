"""Poster frames: a still from each video of a report, so its players show a picture instead of a black box.

A poster is named by its video's content, in the campaign's posters folder (not among the media it shows), so a
rerun finds the one it made before and a video that changes gets a poster of its own.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cutroom.media import MediaError, probe, run_ffmpeg
from cutroom.storage import Storage, campaign_prefix, sha256_file

#: Where in a video its poster is taken: past a fade-in or a black first frame, well before the end card.
POSTER_AT = 0.1
POSTER_WIDTH = 480
#: ffmpeg runs in subprocesses: a few threads keep both cores busy while others wait on storage.
WORKERS = 4

log = logging.getLogger(__name__)


def poster_key(campaign_id: str, video_sha256: str) -> str:
    return f"{campaign_prefix(campaign_id)}/posters/{video_sha256}.jpg"


def poster_frame(video: Path, out_jpg: Path) -> Path:
    """A small JPEG of the frame at POSTER_AT of the video's length (its first frame when that is unknown)."""
    duration = probe(video).duration_s or 0.0
    scale = f"scale='min({POSTER_WIDTH},iw)':-2"
    run_ffmpeg(
        ["-ss", f"{duration * POSTER_AT:.3f}", "-i", str(video), "-map", "0:v:0", "-frames:v", "1"]
        + ["-vf", scale, "-q:v", "5", str(out_jpg)],
        what=f"taking a poster frame of {video.name}",
    )
    if not out_jpg.is_file():
        raise MediaError(f"no frame could be decoded from {video.name}")
    return out_jpg


def make_posters(storage: Storage, campaign_id: str, videos: Mapping[str, str | None]) -> dict[str, str]:
    """Video URI → its poster's URI, for `videos` (URI → its sha256, None when not known), made where missing.

    A video whose poster cannot be made keeps its player without one: a poster never costs the report.
    """

    def poster(uri: str, sha256: str | None) -> str | None:
        key = storage.key_of(uri)
        try:
            sha256 = sha256 or sha256_file(storage.local_path(key))
            target = poster_key(campaign_id, sha256)
            if not storage.exists(target):
                with tempfile.TemporaryDirectory(prefix="cutroom-poster-") as folder:
                    frame = poster_frame(storage.local_path(key), Path(folder) / "poster.jpg")
                    storage.put_file(target, frame, "image/jpeg")
            return storage.uri(target)
        except (MediaError, OSError) as exc:
            log.warning("no poster for %s: %s", uri, exc)
            return None

    with ThreadPoolExecutor(WORKERS) as pool:
        made = dict(zip(videos, pool.map(poster, videos, videos.values()), strict=True))
    return {uri: poster_uri for uri, poster_uri in made.items() if poster_uri}
