"""Outputs a vendor serves at links that expire, as its CDN does: rendered on first download, then kept.

Mount the route under the vendor's prefix (`hosted.route(router)`) so downloads are logged as the vendor's and
may meet transport faults like any other request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request, Response

from simulator.core import Fault, Simulator

MEDIA_PATH = "/_media"


def _not_found() -> Response:
    return Response(b"<Error><Code>NoSuchKey</Code></Error>", 404, media_type="application/xml")


def _gone() -> Response:
    return Response(b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>", 403,
                    media_type="application/xml")  # fmt: skip


@dataclass
class _File:
    make: Callable[[], bytes]
    mime: str
    shape: tuple[Any, ...]
    ready_at: float
    expired: bool
    lifetime_s: float | None = None
    data: bytes | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class Hosted:
    """Files by name; `gone` is what an expired link answers (default: a signed-URL 403, as S3/CloudFront)."""

    def __init__(self, sim: Simulator, prefix: str, gone: Callable[[], Response] = _gone):
        self.sim, self.prefix, self.gone = sim, prefix, gone
        self._files: dict[str, _File] = {}

    def put(
        self,
        name: str,
        make: Callable[[], bytes],
        mime: str,
        *,
        shape: tuple[Any, ...] = (),
        ready_at: float | None = None,
        fault: Fault | None = None,
        lifetime_s: float | None = None,
    ) -> None:
        """Serve `make()`'s bytes at `name` from `ready_at` (monotonic) for the vendor's `lifetime_s`, capped by
        output_ttl_s; `shape` names what decides the look apart from the prompt, so stock media (benchmarks)
        renders each shape once."""
        ready = time.monotonic() if ready_at is None else ready_at
        self._files[name] = _File(
            make, mime, shape, ready, expired=fault is Fault.expired, lifetime_s=lifetime_s
        )

    def url(self, request: Request, name: str) -> str:
        return f"{str(request.base_url).rstrip('/')}{self.prefix}{MEDIA_PATH}/{name}"

    def bytes_of(self, name: str) -> bytes | None:
        """A hosted file's bytes (rendered now if need be), for a vendor that answers with them inline."""
        file = self._files.get(name)
        return None if file is None else self._data(file)

    def _data(self, file: _File) -> bytes:
        if file.shape and self.sim.config.stock_media:
            return self.sim.media(file.shape, file.make)
        with file.lock:
            if file.data is None:
                file.data = file.make()
            return file.data

    def route(self, router: APIRouter) -> None:
        @router.get(MEDIA_PATH + "/{name}")
        def media(name: str) -> Response:
            # A sync route: FastAPI runs it in a worker thread, so rendering never blocks the event loop.
            file = self._files.get(name)
            now = time.monotonic()
            if file is None or now < file.ready_at:
                return _not_found()
            lifetime = min(self.sim.config.output_ttl_s, file.lifetime_s or float("inf"))
            if file.expired or now - file.ready_at > lifetime:
                return self.gone()
            return Response(self._data(file), media_type=file.mime)
