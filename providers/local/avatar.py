"""The offline avatar: the presenter's still held for as long as the voice speaks, with that voice, as an mp4.

It stands in for a talking-photo vendor so a scene script runs end to end with no key: the portrait input when
the spec has one, else a card in the brand's colour with the speaker's name. Captions are not burned in here:
the script flow lays them over every scene from the voice's word timings, whichever avatar vendor made it.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from PIL import Image, ImageColor, ImageDraw, ImageOps, UnidentifiedImageError

from cutroom.assets import AssetSpec, InputRef
from cutroom.boundary import quote
from cutroom.capabilities import Capability
from cutroom.channels import SIZES
from cutroom.fonts import font
from cutroom.media import MediaError, probe, run_ffmpeg, x264_preset
from cutroom.storage import path_of
from providers.errors import ErrorKind, ProviderError
from providers.protocol import Output
from providers.sync import SyncGenerator

FPS = 24
#: A card with no brand: a calm slate that white type reads on.
DEFAULT_COLOUR = "#243B53"


class LocalAvatar(SyncGenerator):
    """A still presenter: one image and the voice, muxed by ffmpeg into a clip exactly as long as the voice."""

    name = "local"
    capability = Capability.avatar
    model = "still-presenter-1"

    def render(self, spec: AssetSpec) -> Output:
        width, height = (
            (spec.width, spec.height) if spec.width and spec.height else SIZES[spec.aspect or "16:9"]
        )
        if width % 2 or height % 2 or width <= 0 or height <= 0:
            raise self._invalid(f"frame size must be positive and even for H.264, got {width}x{height}")
        audio = _input(spec, "audio")
        if audio is None:
            raise self._invalid("an avatar speaks a voice: add an input with role 'audio'")
        portrait = _input(spec, "portrait")
        still = (
            ImageOps.fit(self._image(portrait), (width, height), Image.Resampling.LANCZOS)
            if portrait
            else name_card(spec.style.headline if spec.style else "", _colour(spec), width, height)
        )
        with tempfile.TemporaryDirectory(prefix="cutroom-avatar-") as tmp:
            picture, out = Path(tmp) / "still.png", Path(tmp) / "avatar.mp4"
            still.save(picture, compress_level=1)
            try:
                voice = self._local(audio)
                duration = probe(voice).duration_s
                if not duration:
                    raise self._invalid(f"the audio input {quote(audio.uri)} holds no sound")
                run_ffmpeg(_encode_args(picture, voice, duration, out), what="rendering a still presenter")
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

    def _local(self, ref: InputRef) -> Path:
        try:
            path = path_of(ref.uri)
        except ValueError as exc:
            raise self._invalid(f"the {ref.role} input must be a stored file, not {quote(ref.uri)}") from exc
        if not path.is_file():
            raise self._invalid(f"the {ref.role} input {quote(ref.uri)} does not exist")
        return path

    def _image(self, ref: InputRef) -> Image.Image:
        try:
            image = Image.open(io.BytesIO(self._local(ref).read_bytes()))
            return ImageOps.exif_transpose(image).convert("RGB")
        except (UnidentifiedImageError, OSError) as exc:
            raise self._invalid(f"the portrait at {quote(ref.uri)} is not a readable image: {exc}") from exc


def name_card(speaker: str, colour: str, width: int, height: int) -> Image.Image:
    """A brand-colour field with the speaker's initial in a disc and their name under it."""
    background = ImageColor.getrgb(colour)[:3]
    card = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(card)
    unit = min(width, height)
    radius = round(unit * 0.18)
    centre = (width // 2, round(height * 0.42))
    draw.ellipse(
        (centre[0] - radius, centre[1] - radius, centre[0] + radius, centre[1] + radius), fill=(255, 255, 255)
    )
    initial = (speaker.strip()[:1] or "•").upper()
    draw.text(centre, initial, font=font(round(radius * 1.1)), fill=background, anchor="mm")
    if speaker.strip():
        draw.text(
            (width // 2, centre[1] + radius + round(unit * 0.08)),
            speaker.strip()[:40],
            font=font(round(unit * 0.07)),
            fill=(255, 255, 255),
            anchor="mm",
        )
    return card


def _colour(spec: AssetSpec) -> str:
    return spec.style.palette[0] if spec.style and spec.style.palette else DEFAULT_COLOUR


def _input(spec: AssetSpec, role: str) -> InputRef | None:
    return next((ref for ref in spec.inputs if ref.role == role), None)


def _encode_args(still: Path, voice: Path, duration: float, out: Path) -> list[str]:
    return [
        "-loop", "1", "-framerate", str(FPS), "-i", str(still),
        "-i", str(voice),
        "-map", "0:v", "-map", "1:a",
        "-t", f"{duration:.3f}",
        "-c:v", "libx264", "-preset", x264_preset("superfast"), "-tune", "stillimage", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "128k",
        "-map_metadata", "-1",
        "-movflags", "+faststart",
        str(out),
    ]  # fmt: skip
