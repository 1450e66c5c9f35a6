"""The offline video provider: an animatic of the keyframe with an eased camera move, a fade and the headline."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from PIL import Image, ImageColor, ImageDraw, ImageOps, UnidentifiedImageError

from cutroom.assets import AssetSpec, InputRef, Style
from cutroom.boundary import quote
from cutroom.capabilities import Capability
from cutroom.channels import SIZES
from cutroom.fonts import font, wrap
from cutroom.media import MediaError, probe, run_ffmpeg, x264_preset
from cutroom.plan import CameraMotion
from cutroom.remote import Remote, RemoteInputError
from cutroom.storage import path_of
from providers import declarations
from providers.errors import ErrorKind, ProviderError
from providers.inputs import check_link, remote_error
from providers.protocol import Output
from providers.sync import SyncGenerator

#: Roles an input image may play, most specific first: a continuation frame wins over a fresh keyframe.
IMAGE_ROLES = ("first_frame", "keyframe")
ZOOM = 1.15
FADE_S = 0.5
REVEAL_START_S = 0.25
REVEAL_END_S = 1.0
X264_PRESET = "superfast"
THREADS = 2

#: Each move as the visible window's (scale start, scale end, x start, x end, y start, y end); scale is the
#: window's share of the frame, x/y where it sits in the free room (0 = left/top, 1 = right/bottom).
MOVES: dict[CameraMotion, tuple[float, float, float, float, float, float]] = {
    CameraMotion.push_in: (1.0, 1 / ZOOM, 0.5, 0.5, 0.5, 0.5),
    CameraMotion.pull_out: (1 / ZOOM, 1.0, 0.5, 0.5, 0.5, 0.5),
    CameraMotion.pan_left: (1 / ZOOM, 1 / ZOOM, 1.0, 0.0, 0.5, 0.5),
    CameraMotion.pan_right: (1 / ZOOM, 1 / ZOOM, 0.0, 1.0, 0.5, 0.5),
    CameraMotion.tilt_up: (1 / ZOOM, 1 / ZOOM, 0.5, 0.5, 1.0, 0.0),
}


class LocalAnimatic(SyncGenerator):
    """Renders a clip from one image with ffmpeg alone: no keys, no network (unless the image is a URL)."""

    name = "local"
    capability = Capability.video
    model = "animatic-1"

    def __init__(self, remote: Remote | None = None) -> None:
        super().__init__()
        self._remote = remote

    def check(self, spec: AssetSpec) -> None:
        """The card's checks, and a keyframe link refused before the run when its address is not allowed."""
        declarations.vendor(self.name).card(spec.model, self.capability).check(spec)
        source = _image_input(spec)
        if source is not None and source.uri.startswith(("http://", "https://")):
            check_link(source, self.name, self._remote)

    def render(self, spec: AssetSpec) -> Output:
        width, height = _frame_size(spec)
        fps, duration = spec.fps or 24, spec.duration_s or 5.0
        if width % 2 or height % 2 or width <= 0 or height <= 0:
            raise self._invalid(f"frame size must be positive and even for H.264, got {width}x{height}")
        if fps <= 0 or duration <= 0:
            raise self._invalid(f"fps and duration must be positive, got {fps} fps and {duration} s")
        source = _image_input(spec)
        if source is None:
            raise self._invalid(
                "a video needs a keyframe image: add an input with role 'keyframe' or 'first_frame'"
            )
        picture = ImageOps.fit(self._open_image(source), (width, height), Image.Resampling.LANCZOS)
        card = _headline_card(spec.style, width, height)
        frames = max(1, round(duration * fps))
        # A continuation must start on the previous clip's exact frame, so it cuts in instead of fading.
        fade_s = 0.0 if source.role == "first_frame" else min(FADE_S, duration / 4)
        motion = spec.camera_motion or CameraMotion.static
        graph = _filter_graph(motion, frames, fps, duration, fade_s, card, width, height)
        with tempfile.TemporaryDirectory(prefix="cutroom-animatic-") as tmp:
            stills = {
                Path(tmp) / f"{name}.png": im
                for name, im in (("keyframe", picture), ("headline", card))
                if im
            }
            for path, image in stills.items():
                image.save(path, compress_level=1)
            out = Path(tmp) / "clip.mp4"
            try:
                run_ffmpeg(
                    _encode_args(list(stills), graph, frames, fps, out), what=f"rendering a {motion} animatic"
                )
                info = probe(out)
            except MediaError as exc:
                raise ProviderError(ErrorKind.generation_failed, str(exc), provider=self.name) from exc
            return Output(
                data=out.read_bytes(),
                mime="video/mp4",
                width=info.width,
                height=info.height,
                duration_s=info.duration_s,
            )

    def _invalid(self, message: str) -> ProviderError:
        return ProviderError(ErrorKind.invalid_input, message, provider=self.name)

    def _open_image(self, ref: InputRef) -> Image.Image:
        if ref.uri.startswith(("http://", "https://")):
            data = self._download(ref.uri)
        else:
            try:
                data = path_of(ref.uri).read_bytes()
            except (ValueError, OSError) as exc:
                raise self._invalid(f"cannot read the {ref.role} image {quote(ref.uri)}: {exc}") from exc
        try:
            image = Image.open(io.BytesIO(data))
            return ImageOps.exif_transpose(image).convert("RGB")
        except (UnidentifiedImageError, OSError) as exc:
            raise self._invalid(f"the {ref.role} at {quote(ref.uri)} is not a readable image: {exc}") from exc

    def _download(self, uri: str) -> bytes:
        """A keyframe link, fetched through cutroom.remote: public addresses only, capped, and an image."""
        try:
            return (self._remote or Remote.from_settings()).fetch(uri, ("image",)).data
        except RemoteInputError as exc:
            raise remote_error(exc, self.name) from None


def _frame_size(spec: AssetSpec) -> tuple[int, int]:
    if spec.width and spec.height:
        return spec.width, spec.height
    return SIZES[spec.aspect] if spec.aspect else (1280, 720)


def _image_input(spec: AssetSpec) -> InputRef | None:
    for role in IMAGE_ROLES:
        for ref in spec.inputs:
            if ref.role == role:
                return ref
    return None


def _encode_args(stills: list[Path], graph: str, frames: int, fps: int, out: Path) -> list[str]:
    return [
        "-filter_complex_threads", str(THREADS),
        *(arg for still in stills for arg in ("-i", str(still))),
        "-filter_complex", graph,
        "-map", "[v]",
        "-frames:v", str(frames),
        "-r", str(fps),
        "-c:v", "libx264",
        "-preset", x264_preset(X264_PRESET),
        "-pix_fmt", "yuv420p",
        "-threads", str(THREADS),
        "-an",
        "-map_metadata", "-1",
        "-movflags", "+faststart",
        str(out),
    ]  # fmt: skip


def _eased(progress: str) -> str:
    """Smoothstep of a 0..1 ffmpeg expression: the move starts and settles gently."""
    p = f"clip({progress},0,1)"
    return f"({p}*{p}*(3-2*{p}))"


def _camera(motion: CameraMotion, frames: int) -> str:
    """A perspective filter whose corners glide with sub-pixel precision, unlike zoompan's integer steps."""
    s0, s1, x0, x1, y0, y1 = MOVES[motion]
    e = _eased(f"(in-1)/{max(frames - 1, 1)}")
    scale = f"({s0}+({s1 - s0})*{e})"
    left = f"((W-W*{scale})*({x0}+({x1 - x0})*{e}))"
    top = f"((H-H*{scale})*({y0}+({y1 - y0})*{e}))"
    right, bottom = f"({left}+W*{scale})", f"({top}+H*{scale})"
    corners = ((left, top), (right, top), (left, bottom), (right, bottom))  # perspective's order
    return (
        "perspective="
        + ":".join(f"x{i}='{x}':y{i}='{y}'" for i, (x, y) in enumerate(corners))
        + ":eval=frame"
    )


def _filter_graph(
    motion: CameraMotion,
    frames: int,
    fps: int,
    duration: float,
    fade_s: float,
    card: Image.Image | None,
    width: int,
    height: int,
) -> str:
    # Convert and decode the still once, then repeat it: per-frame work is only the move and the encode.
    hold = f"loop=loop={frames - 1}:size=1,setpts=N/({fps}*TB)"
    steps = ["format=yuv420p", hold]
    if motion in MOVES:
        steps.append(_camera(motion, frames))
    if fade_s:
        steps.append(f"fade=t=in:st=0:d={fade_s}")
    if card is None:
        return f"[0:v]{','.join(steps)}[v]"
    start, end = min(REVEAL_START_S, duration / 10), min(REVEAL_END_S, duration / 2)
    rise = round(height * 0.03)
    # Top of the frame: the lower third belongs to the captions a reel lays over every clip.
    left, top = round(width * 0.06), round(height * 0.08)
    e = _eased(f"(t-{start})/{end - start}")
    return (
        f"[0:v]{','.join(steps)}[bg];"
        f"[1:v]format=yuva420p,{hold},fade=t=in:st={start}:d={end - start}:alpha=1[hl];"
        f"[bg][hl]overlay=x={left}:y='{top}-{rise}*(1-{e})':format=yuv420[v]"
    )


def _headline_card(style: Style | None, width: int, height: int) -> Image.Image | None:
    """The headline typeset by Pillow on a translucent card with a brand-colour bar, for the top of the frame."""
    if style is None or not style.headline.strip():
        return None
    size = round(min(width, height) * 0.06)
    max_text = width * 0.88 - size * 1.6
    while True:
        typeface = font(size)
        lines = wrap(style.headline, typeface, max_text)
        text_w = max(round(typeface.getlength(line)) for line in lines)
        if (len(lines) <= 3 and text_w <= max_text) or size <= 14:
            break
        size = max(14, round(size * 0.85))
    pad, bar, leading = round(size * 0.5), max(3, round(size * 0.18)), round(size * 1.2)
    card = Image.new("RGBA", (text_w + 2 * pad + bar, leading * len(lines) + 2 * pad), (0, 0, 0, 0))
    draw = ImageDraw.Draw(card)
    draw.rounded_rectangle((0, 0, card.width - 1, card.height - 1), radius=pad // 2, fill=(10, 10, 14, 190))
    accent = ImageColor.getrgb(style.palette[0]) if style.palette else (255, 255, 255)
    draw.rectangle((0, 0, bar - 1, card.height - 1), fill=(*accent[:3], 255))
    for i, line in enumerate(lines):
        draw.text((bar + pad, pad + i * leading), line, font=typeface, fill=(255, 255, 255, 255))
    return card
