"""The provider catalogue: who is ready here and why not, and the lineup a brief's preferences make."""

from __future__ import annotations

import pytest

from cutroom.assets import InputRef
from cutroom.brief import parse_brief
from cutroom.specs import clip_spec
from providers import registry, simulation
from providers.base import Capability, ErrorKind, ProviderError
from providers.local.planner import LocalPlanner

BRIEF = {
    "campaign": "Lineup",
    "brand": {"name": "Ibis", "palette": ["#2B2D42", "#EF233C"]},
    "goal": "sell walking boots",
    "audience": "hikers",
    "channels": ["tiktok"],
}


@pytest.fixture
def no_keys(monkeypatch):
    for name in ("LUMAAI_API_KEY", "RUNWAYML_API_SECRET", simulation.SIMULATOR_ENV):
        monkeypatch.delenv(name, raising=False)


def test_vendors_need_their_key_and_fall_back_to_local(no_keys):
    choice = registry.choose(Capability.video, ["runway", "luma"])
    assert choice.name == "local"
    assert choice.passed_over == ["runway: set RUNWAYML_API_SECRET", "luma: set LUMAAI_API_KEY"]


def test_the_simulator_makes_every_vendor_ready(no_keys, monkeypatch):
    monkeypatch.setenv(simulation.SIMULATOR_ENV, "http://127.0.0.1:9")
    assert registry.choose(Capability.video, ["runway"]).name == "runway"
    assert all(entry.missing() is None for entry in registry.CATALOGUE)


def test_nothing_ready_says_why(no_keys, monkeypatch):
    monkeypatch.setattr(registry, "DEFAULT_ORDER", {**registry.DEFAULT_ORDER, Capability.video: ()})
    with pytest.raises(ProviderError) as caught:
        registry.choose(Capability.video, ["luma"])
    assert caught.value.kind is ErrorKind.not_configured and "luma: set LUMAAI_API_KEY" in str(caught.value)


def test_the_lineup_carries_the_video_models_durations_into_clip_specs(no_keys, monkeypatch):
    monkeypatch.setenv(simulation.SIMULATOR_ENV, "http://127.0.0.1:9")
    brief = parse_brief({**BRIEF, "providers": {"video": ["luma"]}})
    lineup = registry.lineup(brief.providers)
    assert (lineup.video.name, lineup.video.model, lineup.video.durations_s) == ("luma", "ray-2", (5.0, 9.0))
    story = LocalPlanner().plan(brief).stories[0]
    ref = InputRef(role="keyframe", uri="https://example.com/k.png", sha256="0" * 64)
    durations = [
        clip_spec(s, brief, "luma", "ray-2", ref, lineup.video.durations_s).duration_s for s in story.shots
    ]
    assert [s.duration_s for s in story.shots] == [4.0, 4.0, 4.0] and durations == [5.0, 5.0, 5.0]
    assert clip_spec(story.shots[0], brief, "local", "animatic-1", ref).duration_s == 4.0
