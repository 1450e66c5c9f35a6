"""The offline template renderer: a brand template's modifications composed with ffmpeg, as Creatomate would.

The same modifications a template vendor is sent (headline, body and call to action as text layers; an image, a
clip and a voice as media) make one render here: the clip (or the still, slowly zoomed, or the brand colour)
fills the frame, the text layers sit over it in the brand palette, and the voice is the sound. The render lasts
as long as the voice, else the clip, else the spec's duration; with none of them it is a still, a png. Sizes are kept small and the encode
fast: this is a stand-in, for the demo and for tests.

`compose` works on files alone, so the simulator renders its Creatomate renders with it too.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageColor, ImageDraw, ImageOps, UnidentifiedImageError

from cutroom.assets import AssetSpec, InputRef
from cutroom.boundary import quote
from cutroom.capabilities import Capability
from cutroom.channels import SIZES
from cutroom.fonts import font, wrap
from cutroom.media import MediaError, probe, run_ffmpeg
from cutroom.remote import Remote, RemoteInputError
from cutroom.storage import path_of
from providers import declarations
from providers.errors import ErrorKind, ProviderError
from providers.inputs import check_link, remote_error
from providers.protocol import Output
from providers.sync import SyncGenerator

#: What each input role of a template is, as media.
ROLES = {"image": ("image",), "clip": ("video",), "voice": ("audio",)}
#: The render's longer side at most: a stand-in, kept fast.
MAX_SIDE = 960
FPS = 24
#: How much the still grows over the render: the template's slow push-in.
ZOOM = 0.08
X264_PRESET = "ultrafast"
THREADS = 2
#: Drawn when the brief has no palette: near-black and amber.
DEFAULT_PALETTE = ("#111827", "#F59E0B")


@dataclass(frozen=True)
class Modifications:
    """What a template is filled with: its text layers and the brand colours they are set in."""

    headline: str
    body: str = ""
    cta: str = ""
    palette: tuple[str, ...] = DEFAULT_PALETTE

    @classmethod
    def of(cls, spec: AssetSpec) -> Modifications:
        """A spec's text: the options' headline (else the prompt), body and cta; the style's palette."""
        options = spec.options
        palette = spec.style.palette if spec.style and spec.style.palette else DEFAULT_PALETTE
        return cls(
            headline=str(options.get("headline") or spec.prompt),
            body=str(options.get("body") or ""),
            cta=str(options.get("cta") or ""),
            palette=tuple(palette),
        )


class LocalTemplate(SyncGenerator):
    """Renders a template's modifications with Pillow and ffmpeg: no keys, no network (unless an input is a URL)."""

    name = "local"
    capability = Capability.template
    model = "ffmpeg-template-1"

    def __init__(self, remote: Remote | None = None) -> None:
        super().__init__()
        self._remote = remote

    def check(self, spec: AssetSpec) -> None:
        """The card's checks, one input per role, and a link refused before the run when its address is not allowed."""
        declarations.vendor(self.name).card(spec.model, self.capability).check(spec)
        roles = [ref.role for ref in spec.inputs]
        if len(set(roles)) < len(roles):
            raise self._invalid(f"a template takes one input per role, got {roles}")
        for ref in spec.inputs:
            if ref.uri.startswith(("http://", "https://")):
                check_link(ref, self.name, self._remote)

    def render(self, spec: AssetSpec) -> Output:
        width, height = frame_size(spec)
        with tempfile.TemporaryDirectory(prefix="cutroom-template-") as tmp:
            media = {ref.role: self._file(ref, Path(tmp)) for ref in spec.inputs}
            try:
                data, mime = compose(
                    Modifications.of(spec), width, height, Path(tmp), duration_s=spec.duration_s, **media
                )
            except MediaError as exc:
                raise ProviderError(ErrorKind.generation_failed, str(exc), provider=self.name) from exc
            except (UnidentifiedImageError, OSError) as exc:
                raise self._invalid(f"the image input is not a readable image: {exc}") from exc
            if mime == "image/png":
                return Output(data=data, mime=mime, width=width, height=height)
            out = Path(tmp) / "render.mp4"
            out.write_bytes(data)
            info = probe(out)
        return Output(data=data, mime=mime, width=info.width, height=info.height, duration_s=info.duration_s)

    def _invalid(self, message: str) -> ProviderError:
        return ProviderError(ErrorKind.invalid_input, message, provider=self.name)

    def _file(self, ref: InputRef, tmp: Path) -> Path:
        """An input as a file ffmpeg can read: a local one as it is, a link fetched through cutroom.remote."""
        if ref.uri.startswith(("http://", "https://")):
            try:
                fetched = (self._remote or Remote.from_settings()).fetch(ref.uri, ROLES[ref.role])
            except RemoteInputError as exc:
                raise remote_error(exc, self.name, ref.role) from None
            path = tmp / f"input-{ref.role}"
            path.write_bytes(fetched.data)
            return path
        try:
            path = path_of(ref.uri)
        except ValueError as exc:
            raise self._invalid(f"cannot read the {ref.role} input {quote(ref.uri)}: {exc}") from exc
        if not path.is_file():
            raise self._invalid(f"the {ref.role} input {quote(ref.uri)} is not a file")
        return path


def frame_size(spec: AssetSpec) -> tuple[int, int]:
    """The spec's size (or its aspect's) scaled down to MAX_SIDE, even for H.264."""
    width, height = (
        (spec.width, spec.height) if spec.width and spec.height else SIZES.get(spec.aspect, (1280, 720))
    )
    scale = min(1.0, MAX_SIDE / max(width, height))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def compose(
    mods: Modifications,
    width: int,
    height: int,
    work: Path,
    image: Path | None = None,
    clip: Path | None = None,
    voice: Path | None = None,
    duration_s: float | None = None,
) -> tuple[bytes, str]:
    """The template rendered: an mp4 as long as the voice, else the clip, else `duration_s`; a png when there is
    none of them."""
    layers = text_layers(mods, width, height)
    if clip is None and voice is None and duration_s is None:
        still = _background(mods, width, height, image)
        still.alpha_composite(layers)
        out = work / "render.png"
        still.convert("RGB").save(out, compress_level=1)
        return out.read_bytes(), "image/png"
    timed = voice if voice is not None else clip
    duration = probe(timed).duration_s if timed is not None else duration_s
    if not duration or duration <= 0:
        raise MediaError(f"the {'voice' if voice is not None else 'clip'} has no length")
    frames = max(1, round(duration * FPS))
    layers.save(work / "layers.png", compress_level=1)
    if clip is not None:
        background = ["-stream_loop", "-1", "-i", str(clip)]
        fill = f"scale={width}:{height}:force_original_aspect_ratio=increase,crop={width}:{height},fps={FPS}"
    else:
        _background(mods, width, height, image).convert("RGB").save(work / "still.png", compress_level=1)
        background = ["-i", str(work / "still.png")]
        # zoompan makes all the frames from the one still: a slow push-in to the centre.
        fill = (
            f"zoompan=z='1+{ZOOM}*on/{frames}':x='iw/2-iw/zoom/2':y='ih/2-ih/zoom/2'"
            f":d={frames}:s={width}x{height}:fps={FPS}"
        )
    sound = ["-i", str(voice)] if voice is not None else []
    out = work / "render.mp4"
    run_ffmpeg(
        [
            "-filter_complex_threads", str(THREADS),
            *background,
            "-loop", "1", "-framerate", str(FPS), "-i", str(work / "layers.png"),
            *sound,
            "-filter_complex",
            f"[0:v]{fill},setsar=1,format=yuv420p[bg];[bg][1:v]overlay=0:0:shortest=0,format=yuv420p[v]",
            "-map", "[v]",
            *(["-map", "2:a:0", "-c:a", "aac", "-b:a", "96k"] if voice is not None else ["-an"]),
            "-frames:v", str(frames),
            "-t", f"{duration:.3f}",
            "-r", str(FPS),
            "-c:v", "libx264",
            "-preset", X264_PRESET,
            "-pix_fmt", "yuv420p",
            "-threads", str(THREADS),
            "-map_metadata", "-1",
            "-movflags", "+faststart",
            str(out),
        ],
        what="rendering a template",
    )  # fmt: skip
    return out.read_bytes(), "video/mp4"


def _background(mods: Modifications, width: int, height: int, image: Path | None) -> Image.Image:
    """The image filling the frame, else a field of the brand's first colour."""
    if image is None:
        return Image.new("RGBA", (width, height), _rgb(mods.palette[0]))
    with Image.open(image) as opened:
        picture = ImageOps.exif_transpose(opened).convert("RGBA")
    return ImageOps.fit(picture, (width, height), Image.Resampling.LANCZOS)


def text_layers(mods: Modifications, width: int, height: int) -> Image.Image:
    """The template's text layers on a transparent frame: the headline on a dark card with a brand-colour bar at
    the top, the body under it, and the call to action in a pill of the brand's accent at the bottom."""
    layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    unit = min(width, height)
    left, y = round(width * 0.06), round(height * 0.07)
    room = width - 2 * left
    brand, accent = _rgb(mods.palette[0]), _rgb(mods.palette[1 if len(mods.palette) > 1 else 0])
    for text, size, most in ((mods.headline, 0.085, 3), (mods.body, 0.045, 4)):
        if not text.strip():
            continue
        face, lines = _fitted(text, round(unit * size), room - round(unit * 0.06), most)
        pad, bar, leading = face.size // 2, max(3, face.size // 5), round(face.size * 1.25)
        box_w = round(max(face.getlength(line) for line in lines)) + 2 * pad + bar
        box_h = leading * len(lines) + pad
        draw.rounded_rectangle((left, y, left + box_w, y + box_h), radius=pad // 2, fill=(10, 10, 14, 190))
        draw.rectangle((left, y, left + bar - 1, y + box_h), fill=(*brand, 255))
        for i, line in enumerate(lines):
            draw.text(
                (left + bar + pad, y + pad // 2 + i * leading), line, font=face, fill=(255, 255, 255, 255)
            )
        y += box_h + round(unit * 0.03)
    if mods.cta.strip():
        face, lines = _fitted(mods.cta, round(unit * 0.055), round(width * 0.7), 1)
        text = lines[0]
        pad_x, pad_y = round(face.size * 0.9), round(face.size * 0.5)
        pill_w, pill_h = round(face.getlength(text)) + 2 * pad_x, face.size + 2 * pad_y
        x0, y0 = (width - pill_w) // 2, height - round(height * 0.1) - pill_h
        draw.rounded_rectangle((x0, y0, x0 + pill_w, y0 + pill_h), radius=pill_h // 2, fill=(*accent, 255))
        draw.text((width // 2, y0 + pill_h // 2), text, font=face, fill=_ink_on(accent), anchor="mm")
    return layer


def _fitted(text: str, size: int, room: float, most_lines: int) -> tuple[object, list[str]]:
    """A font and the text's lines: smaller until it fits `most_lines` lines of `room` px (the rest is cut)."""
    while True:
        face = font(size)
        lines = wrap(text, face, room)
        fits = len(lines) <= most_lines and all(face.getlength(line) <= room for line in lines)
        if fits or size <= 12:
            return face, lines[:most_lines]
        size = max(12, round(size * 0.88))


def _rgb(colour: str) -> tuple[int, int, int]:
    try:
        return ImageColor.getrgb(colour)[:3]
    except ValueError:
        return ImageColor.getrgb(DEFAULT_PALETTE[0])[:3]


def _ink_on(background: tuple[int, int, int]) -> tuple[int, int, int, int]:
    """White or near-black, whichever reads on the background."""
    r, g, b = background
    return (17, 17, 17, 255) if 0.299 * r + 0.587 * g + 0.114 * b > 150 else (255, 255, 255, 255)
