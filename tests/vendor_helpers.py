"""What the vendor adapter tests share: an adapter pointed at the simulator by injection, an image spec of an
aspect, a recorder of the requests an adapter sends, an input image, a refusal. What is a vendor's own (its
defaults, its control routes, its form reading) stays in tests/test_<vendor>.py."""

from __future__ import annotations

from collections.abc import Callable
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import httpx
import pytest
from PIL import Image

from cutroom.assets import AssetKind, AssetSpec, InputRef
from cutroom.channels import SIZES, Aspect
from providers import declarations
from providers.errors import ErrorKind, ProviderError
from providers.vendor import VendorAdapter
from tests.simulator_fixture import SimulatorHandle

Adapter = TypeVar("Adapter", bound=VendorAdapter)


class Sent:
    """Every request an adapter's HTTP client sends, read whole (the simulator logs a multipart body by size only)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> None:
        request.read()
        self.requests.append(request)

    def parts(self, index: int = -1) -> list[tuple[str, str | None, str, bytes]]:
        return multipart(self.requests[index])


def multipart(request: httpx.Request) -> list[tuple[str, str | None, str, bytes]]:
    """A multipart request's parts: (field, filename, content type, bytes)."""
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode() + request.content
    )
    assert message.is_multipart(), "not multipart/form-data"
    return [
        (
            str(part.get_param("name", header="content-disposition")),
            part.get_filename(),
            part.get_content_type(),
            part.get_payload(decode=True),
        )
        for part in message.get_payload()
    ]


def on_simulator(
    cls: type[Adapter],
    sim: SimulatorHandle,
    model: str | None = None,
    *,
    scale: float,
    timeout: float | None = None,
    sent: Sent | None = None,
    **options: Any,
) -> Adapter:
    """The vendor's real adapter pointed at the simulator by injection: its mount and key (from the vendor's
    declaration) and its clock; `sent` records every request the adapter's HTTP client sends."""
    mount = declarations.vendor(cls.vendor_name).simulator
    assert mount is not None, f"{cls.vendor_name} has no simulator"
    settings: dict[str, Any] = {"base_url": sim.url + mount.prefix, "api_key": mount.key, "time_scale": scale}
    if timeout is not None:
        settings["timeout"] = timeout
    if sent is not None:
        settings["http_client"] = httpx.Client(timeout=timeout or 10.0, event_hooks={"request": [sent]})
    return cls(model, **{**settings, **options})


def image_spec(
    provider: str, model: str, prompt: str, aspect: Aspect | None = Aspect.landscape, /, **changes: Any
) -> AssetSpec:
    """An image request of the aspect at its channel size (None: no shape asked), seed 7; `changes` override any
    field, the model and prompt too."""
    fields: dict[str, Any] = {"kind": AssetKind.image, "provider": provider, "model": model, "prompt": prompt}
    if aspect is not None:
        fields |= {"aspect": aspect, "width": SIZES[aspect][0], "height": SIZES[aspect][1]}
    return AssetSpec(**{**fields, "seed": 7, **changes})


def image_ref(
    path: Path, role: str = "reference", size: tuple[int, int] = (64, 48), fmt: str = "PNG"
) -> InputRef:
    """A picture written to `path`, as an input of that role."""
    Image.new("RGB", size, (30, 90, 160)).save(path, format=fmt)
    return InputRef(role=role, uri=path.as_uri(), sha256="0" * 64)


def not_an_image(path: Path, role: str = "reference") -> InputRef:
    """A file named like a picture whose bytes are text, as an input: refused before any request."""
    path.write_text("not an image at all")
    return InputRef(role=role, uri=path.as_uri(), sha256="0" * 64)


def refused(call: Callable[[], object], kind: ErrorKind | None = None) -> ProviderError:
    """The ProviderError the call raises (of that kind, when one is named)."""
    with pytest.raises(ProviderError) as caught:
        call()
    assert kind is None or caught.value.kind is kind, caught.value
    return caught.value


def literals(hint: Any) -> tuple[Any, ...]:
    """The values of a Literal, also when it sits inside a Union (like `Literal[...] | str`): what an SDK's
    request type allows."""
    if get_origin(hint) is Literal:
        return get_args(hint)
    if get_origin(hint) is Union:
        return tuple(v for arg in get_args(hint) for v in literals(arg))
    return ()
