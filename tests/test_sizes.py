"""providers/sizes.py: the shape a spec asks for and the vendor ratio nearest it, as every adapter reads them."""

from __future__ import annotations

from cutroom.assets import AssetSpec
from cutroom.channels import Aspect
from providers.sizes import asked_size, dimensions, named_ratio, nearest_ratio, ratio_of, strays
from tests.vendor_helpers import image_spec


def spec(aspect: Aspect | None = Aspect.landscape, **changes: object) -> AssetSpec:
    return image_spec("acme", "acme-1", "a kite", aspect, **changes)


def test_the_asked_size_is_the_specs_own_else_its_aspects_channel_size() -> None:
    assert asked_size(spec(Aspect.vertical)) == (720, 1280)
    assert asked_size(spec(Aspect.square, width=None, height=None)) == (1080, 1080)
    assert asked_size(spec(None)) is None
    disagreeing = spec(Aspect.landscape, width=1000, height=1000)
    assert asked_size(disagreeing) == (1000, 1000)
    assert asked_size(disagreeing, aspect_first=True) == (1280, 720)


def test_ratios_and_sizes_are_read_however_a_vendor_writes_them() -> None:
    assert dimensions("16:9") == dimensions("16x9") == (16, 9)
    assert dimensions("1280:720") == (1280, 720) and ratio_of("1024x1536") == 1024 / 1536


def test_the_nearest_ratio_is_on_a_log_scale_and_the_aspect_wins_by_name() -> None:
    assert nearest_ratio(1.0, ["16:9", "1:1"]) == "1:1"
    assert nearest_ratio(1700 / 1000, ("21:9", "16:9", "3:2")) == "16:9"
    assert named_ratio(spec(Aspect.vertical), ("9x16", "1x1"), separator="x") == "9x16"
    assert named_ratio(spec(None, width=3000, height=1000), ("21:9", "16:9")) == "21:9"
    assert named_ratio(spec(None), ("1:1",)) is None
    assert strays(1.5, 16 / 9, 0.08) and not strays(1.7, 16 / 9, 0.08)
