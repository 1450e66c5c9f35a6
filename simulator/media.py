"""Real media for simulated outputs, from the offline renderers, and checks of media a client uploads.

A vendor simulator answers bad media as its vendor would (a 4xx in the vendor's shape): `image_size` and
`data_uri` say whether what came is usable, and never raise.
"""

from __future__ import annotations

import base64
import binascii
import io
import tempfile
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from PIL import Image, UnidentifiedImageError

from cutroom.assets import AssetKind, AssetSpec, InputRef
from providers.local.image import LocalImage
from providers.local.video import LocalAnimatic
from simulator.core import outbound_tls

#: Formats a still can be served in, by the name vendors use.
IMAGE_FORMATS = {"png": "PNG", "jpeg": "JPEG", "jpg": "JPEG", "webp": "WEBP"}
MIME = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "webp": "image/webp",
    "mp4": "video/mp4",
}


def still(prompt: str, width: int, height: int, fmt: str = "png") -> bytes:
    """An image of exactly width x height drawn from the prompt, encoded as png, jpeg or webp."""
    spec = AssetSpec(
        kind=AssetKind.image, provider="simulator", model="still", prompt=prompt or "image", width=width,
        height=height,
    )  # fmt: skip
    png = LocalImage().render(spec).data
    fmt = fmt.lower()
    if fmt == "png":
        return png
    buffer = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").save(buffer, format=IMAGE_FORMATS[fmt], quality=90)
    return buffer.getvalue()


@lru_cache(maxsize=64)
def clip(
    prompt: str, width: int, height: int, duration_s: float, fps: int = 24, start: bytes | None = None
) -> bytes:
    """An H.264 MP4 animatic of the prompt (or of the `start` image), width and height made even.

    Kept for the same ask: the simulator serves a session of tests, which ask many vendors for the same shots,
    and a render costs a second or more of CPU."""
    width, height = width - width % 2, height - height % 2
    with tempfile.TemporaryDirectory(prefix="cutroom-sim-") as tmp:
        keyframe = Path(tmp) / "frame0.png"
        keyframe.write_bytes(start if start is not None else still(prompt, width, height))
        spec = AssetSpec(
            kind=AssetKind.video, provider="simulator", model="clip", prompt=prompt, width=width, height=height,
            fps=fps, duration_s=duration_s, inputs=(InputRef(role="keyframe", uri=keyframe.as_uri(), sha256=""),),
        )  # fmt: skip
        return LocalAnimatic().render(spec).data


def image_size(data: bytes) -> tuple[int, int] | None:
    """The width and height of an image file's bytes, or None when they are not a whole image."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return image.width, image.height
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


def data_uri(text: object) -> tuple[str, bytes] | None:
    """A `data:<mime>;base64,<…>` URI's MIME type and bytes, or None when it is not one."""
    if not isinstance(text, str) or not text.startswith("data:"):
        return None
    head, comma, payload = text.partition(",")
    if not comma or not head.endswith(";base64"):
        return None
    try:
        return head[5:].removesuffix(";base64"), base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None


#: The hosts a simulator can fetch from offline: this machine (the test S3 endpoint, where presigned links point).
LOOPBACK = ("127.0.0.1", "localhost", "::1")
FETCH_TIMEOUT_S = 5.0
MAX_FETCH_BYTES = 20 * 1024 * 1024


class FetchFailed(Exception):
    """A link on this machine did not give its bytes (no answer, an error status, too big); says why."""


async def fetch_local(url: str) -> bytes | None:
    """A link's bytes as a vendor fetching it would get them, when the link is on this machine; None for a link
    elsewhere, which offline cannot reach (the caller decides what a vendor does with it)."""
    if urlsplit(url).hostname not in LOOPBACK:
        return None
    try:
        async with httpx.AsyncClient(timeout=FETCH_TIMEOUT_S, verify=outbound_tls()) as http:
            response = await http.get(url)
    except httpx.HTTPError:
        raise FetchFailed("no answer") from None
    if response.is_error:
        raise FetchFailed(f"HTTP {response.status_code}")
    if len(response.content) > MAX_FETCH_BYTES:
        raise FetchFailed(f"over {MAX_FETCH_BYTES // 2**20} MB")
    return response.content
