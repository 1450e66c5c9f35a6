"""The simulator's stock media: benchmarks must not spend the client's CPU on what a vendor's GPUs would do."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cutroom.assets import AssetKind, AssetSpec
from cutroom.channels import Aspect
from providers import luma, runway, simulation
from providers.polling import PollSchedule, run_job

pytest_plugins = ["tests.simulator_fixture"]

SCHEDULE = PollSchedule(expected_s=0.2, min_interval_s=0.05, max_interval_s=0.2, timeout_s=30)


@pytest.fixture
def sim(simulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    simulator.reset(latency_scale=0.01, latency_jitter=0.0)
    httpx.post(f"{simulator.url}/runway/_sim/limits", json={"concurrency": 4}).raise_for_status()
    monkeypatch.setenv(simulation.SIMULATOR_ENV, simulator.url)
    monkeypatch.delenv("RUNWAYML_API_SECRET", raising=False)
    monkeypatch.delenv("LUMAAI_API_KEY", raising=False)
    yield simulator


def _image(provider: str, model: str, prompt: str, aspect: Aspect = Aspect.square) -> AssetSpec:
    return AssetSpec(kind=AssetKind.image, provider=provider, model=model, prompt=prompt, aspect=aspect)


@pytest.mark.parametrize(
    ("adapter", "model"), [(runway.RunwayImage, "gen4_image"), (luma.LumaImage, "photon-flash-1")]
)
def test_stock_media_serves_one_render_per_shape_and_real_renders_differ(
    sim: Any, adapter: Any, model: str
) -> None:
    provider = adapter.vendor_name
    made = [
        run_job(adapter(), _image(provider, model, p), schedule=SCHEDULE).data for p in ("a cup", "a pier")
    ]
    assert made[0] != made[1], "each prompt is drawn by default"

    sim.configure(stock_media=True)
    stock = [
        run_job(adapter(), _image(provider, model, p), schedule=SCHEDULE).data for p in ("a cup", "a pier")
    ]
    other_shape = run_job(adapter(), _image(provider, model, "a cup", Aspect.landscape), schedule=SCHEDULE)
    assert stock[0] == stock[1], "same shape, same stock bytes"
    assert other_shape.data != stock[0], "a different shape is rendered for itself"
