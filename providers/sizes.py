"""The shape a spec asks for, and the vendor ratio nearest it: read one way by every adapter.

A spec names its shape by its size (width and height), by its aspect, or both (a channel's format fills both).
Vendors name theirs as ratios ('16:9', Ideogram's '16x9', Runway's '1280:720') or sizes ('1024x1536'). What each
vendor then does with the shape (its own grid, its pixel buckets) stays in its adapter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from cutroom.assets import AssetSpec
from cutroom.channels import SIZES


def asked_size(spec: AssetSpec, *, aspect_first: bool = False) -> tuple[int, int] | None:
    """The width and height the spec asks for: its own, else its aspect's channel size; None: any shape.
    `aspect_first` reads the aspect before the size (Google's and OpenAI's reading, where the two disagree)."""
    if aspect_first and spec.aspect is not None:
        return SIZES[spec.aspect]
    if spec.width and spec.height:
        return spec.width, spec.height
    if spec.aspect is not None:
        return SIZES[spec.aspect]
    return None


def dimensions(name: str) -> tuple[int, int]:
    """The two numbers of a ratio or size as a vendor names it: '16:9', '16x9', '1280:720', '1024x1536'."""
    width, height = re.split("[:x]", name)
    return int(width), int(height)


def ratio_of(name: str) -> float:
    """A named ratio or size as width / height."""
    width, height = dimensions(name)
    return width / height


def nearest_ratio(asked: float, ratios: Iterable[str]) -> str:
    """The named ratio (or size) nearest the asked width / height on a log scale; a tie goes to the first."""
    return min(ratios, key=lambda name: abs(math.log(ratio_of(name) / asked)))


def named_ratio(spec: AssetSpec, ratios: Iterable[str], separator: str = ":") -> str | None:
    """The spec's aspect by name where the vendor has it (spelled with its separator), else the ratio nearest the
    size the spec asks for; None when it asks none."""
    ratios = tuple(ratios)
    if spec.aspect is not None and (name := spec.aspect.value.replace(":", separator)) in ratios:
        return name
    shape = asked_size(spec)
    return None if shape is None else nearest_ratio(shape[0] / shape[1], ratios)


def strays(ratio: float, asked: float, tolerance: float) -> bool:
    """Whether a shape (width / height) is further than `tolerance`, relative, from the asked one."""
    return abs(ratio / asked - 1) > tolerance
