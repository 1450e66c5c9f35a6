"""Channels and the formats each one publishes: the table every planner and assembler reads."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel


class Channel(StrEnum):
    instagram = "instagram"
    tiktok = "tiktok"
    youtube = "youtube"
    linkedin = "linkedin"
    x = "x"
    facebook = "facebook"
    email = "email"


class Aspect(StrEnum):
    vertical = "9:16"
    square = "1:1"
    landscape = "16:9"

    @property
    def slug(self) -> str:
        return self.value.replace(":", "x")


class Format(BaseModel, frozen=True):
    aspect: Aspect
    width: int
    height: int
    max_duration_s: float


#: Reel sizes are 720p-class: channel-ready, and cheap enough to render on a laptop.
SIZES: dict[Aspect, tuple[int, int]] = {
    Aspect.vertical: (720, 1280),
    Aspect.square: (1080, 1080),
    Aspect.landscape: (1280, 720),
}

#: Each channel's formats, primary first: one reel is exported per (channel, format).
_FORMATS: dict[Channel, list[tuple[Aspect, float]]] = {
    Channel.instagram: [(Aspect.vertical, 90.0), (Aspect.square, 60.0)],
    Channel.tiktok: [(Aspect.vertical, 180.0)],
    Channel.youtube: [(Aspect.landscape, 600.0)],
    Channel.linkedin: [(Aspect.square, 600.0)],
    Channel.x: [(Aspect.landscape, 140.0)],
    Channel.facebook: [(Aspect.square, 240.0)],
    Channel.email: [(Aspect.landscape, 30.0)],
}


def formats(channel: Channel) -> list[Format]:
    """The formats a channel publishes, its primary format first."""
    return [
        Format(aspect=aspect, width=SIZES[aspect][0], height=SIZES[aspect][1], max_duration_s=limit)
        for aspect, limit in _FORMATS[channel]
    ]


def primary_format(channel: Channel) -> Format:
    return formats(channel)[0]
