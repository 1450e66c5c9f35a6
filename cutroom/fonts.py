"""A typeface for everything Cutroom typesets (Pillow renders all text; ffmpeg never needs a font)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PIL import ImageFont

_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf",
)


@cache
def font(size: int) -> ImageFont.FreeTypeFont:
    """A bold sans at `size` px: a system font when there is one, else the one Pillow embeds."""
    for candidate in _CANDIDATES:
        if Path(candidate).is_file():
            return ImageFont.truetype(candidate, size)
    return ImageFont.load_default(size)


def wrap(text: str, face: ImageFont.FreeTypeFont, max_width: float) -> list[str]:
    """Greedy word wrap: as many words per line as fit in max_width pixels (a long word gets a line)."""
    lines: list[str] = []
    for word in text.split():
        if lines and face.getlength(f"{lines[-1]} {word}") <= max_width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines
