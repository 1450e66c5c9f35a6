"""The simulator as one app: every vendor contract mounted, ready for uvicorn or `cutroom simulate`."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from simulator import luma, runway
from simulator.core import SimConfig, create_app

VENDORS = [luma, runway]


def build_app(config: SimConfig | None = None) -> FastAPI:
    return create_app(VENDORS, config)


def serve(host: str = "127.0.0.1", port: int = 8765, config: SimConfig | None = None) -> None:
    uvicorn.run(build_app(config), host=host, port=port, log_level="warning")


if __name__ == "__main__":
    serve()
