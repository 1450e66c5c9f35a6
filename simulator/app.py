"""The simulator as one app: every vendor contract mounted, ready for uvicorn or `cutroom simulate`.

A vendor is a module of this package that names itself (`VENDOR`), or a plugin's module listed under the
`cutroom.simulators` entry-point group: adding one edits nothing here.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from importlib.metadata import entry_points
from types import ModuleType

import uvicorn
from fastapi import FastAPI

import simulator
from simulator.core import SimConfig, create_app

#: Modules of this package that are the simulator's own frame, not vendors.
FRAME = {"app", "core", "jobs", "media", "outputs", "s3"}
PLUGIN_GROUP = "cutroom.simulators"


@cache
def vendors() -> tuple[ModuleType, ...]:
    """Every vendor contract: this package's vendor modules, then plugins', by vendor name."""
    found = [
        importlib.import_module(f"simulator.{info.name}")
        for info in pkgutil.iter_modules(simulator.__path__)
        if info.name not in FRAME
    ]
    found += [entry.load() for entry in entry_points(group=PLUGIN_GROUP)]
    return tuple(sorted((m for m in found if hasattr(m, "VENDOR")), key=lambda m: m.VENDOR))


def build_app(config: SimConfig | None = None) -> FastAPI:
    return create_app(list(vendors()), config)


def serve(host: str = "127.0.0.1", port: int = 8765, config: SimConfig | None = None) -> None:
    uvicorn.run(build_app(config), host=host, port=port, log_level="warning")


if __name__ == "__main__":
    serve()
