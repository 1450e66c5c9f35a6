"""The simulator as one app: every vendor module present, mounted under its prefix, served by uvicorn."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

import uvicorn
from fastapi import FastAPI

from simulator.core import SimConfig, create_app

#: Vendor modules mounted when present; each is built separately, so a missing one is simply skipped.
VENDOR_MODULES = ("simulator.luma", "simulator.runway")


def available_vendors() -> list[ModuleType]:
    return [importlib.import_module(name) for name in VENDOR_MODULES if importlib.util.find_spec(name)]


def build_app(config: SimConfig | None = None) -> FastAPI:
    return create_app(available_vendors(), config)


def serve(host: str = "127.0.0.1", port: int = 8765, config: SimConfig | None = None) -> None:
    uvicorn.run(build_app(config), host=host, port=port, log_level="warning")


if __name__ == "__main__":
    serve()
