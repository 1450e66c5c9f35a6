"""A brief's providers in order: a vendor that cannot serve the run (a refused key, an empty account) hands over to
the next, and the manifest and report say so; a moderation refusal is never handed to another vendor."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from cutroom.assets import Asset, AssetKind, AssetSpec, InputRef
from cutroom.brief import parse_brief
from cutroom.capabilities import Capability
from cutroom.lineup import Pick
from cutroom.manifest import StoryStatus
from providers import declarations, registry, simulation
from providers.errors import ErrorKind, ProviderError
from tasks import fallback

BRIEF = {
    "campaign": "Hand Over",
    "brand": {"name": "Osprey", "palette": ["#0D1B2A", "#E0E1DD", "#FF6B35"]},
    "goal": "sell sea kayak tours",
    "audience": "weekend adventurers",
    "channels": ["linkedin"],
    "stories": 1,
    "quality_target": 1,
    "max_iterations": 1,
    "providers": {"image": ["runway", "luma", "local"]},
}
RUNWAY_CREATE, LUMA_CREATE = "/runway/v1/text_to_image", "/luma/dream-machine/v1/generations/image"


@pytest.fixture
def vendors_on_their_own_urls(simulator, prefect_server, monkeypatch, tmp_path):
    """Runway and Luma reached by their base-URL variables and keys, as a user configures them (not through
    CUTROOM_SIMULATOR_URL, which would hand every vendor the simulator's good key)."""
    from prefect.settings import PREFECT_RESULTS_LOCAL_STORAGE_PATH, temporary_settings

    monkeypatch.delenv(simulation.SIMULATOR_ENV, raising=False)
    monkeypatch.setenv("RUNWAYML_BASE_URL", f"{simulator.url}/runway")
    monkeypatch.setenv("LUMAAI_BASE_URL", f"{simulator.url}/luma/dream-machine/v1")
    monkeypatch.setenv("LUMAAI_API_KEY", declarations.vendor("luma").simulator.key)
    monkeypatch.setenv("CUTROOM_GLOBAL_LIMITS", "false")
    monkeypatch.chdir(tmp_path)
    simulator.reset(latency_scale=0.01)
    registry.reset()
    with temporary_settings({PREFECT_RESULTS_LOCAL_STORAGE_PATH: str(tmp_path / "results")}):
        yield simulator
    registry.reset()


def run(brief: dict, out) -> object:
    from flows.campaign import campaign

    return asyncio.run(campaign(parse_brief(brief), str(out)))


def accepted(sim, path: str) -> int:
    return sum(
        1 for r in sim.requests() if r["method"] == "POST" and r["path"] == path and r["status"] == 200
    )


def test_a_refused_key_hands_over_to_the_next_vendor_and_the_report_says_why(vendors_on_their_own_urls, tmp_path,
                                                                              monkeypatch):  # fmt: skip
    sim = vendors_on_their_own_urls
    monkeypatch.setenv("RUNWAYML_API_SECRET", "key_revoked")  # not a key Runway accepts
    manifest = run(BRIEF, tmp_path / "out")

    (story,) = manifest.stories
    assert story.status is StoryStatus.complete, story.error
    assert story.keyframe.provider == "luma"
    assert story.keyframe.passed_over and story.keyframe.passed_over[0].startswith("runway: auth:")
    assert accepted(sim, RUNWAY_CREATE) == 0 and accepted(sim, LUMA_CREATE) == 1
    # Once refused, runway is not asked again for the rest of the run.
    assert sum(1 for r in sim.requests() if r["path"] == RUNWAY_CREATE) == 1
    assert manifest.lineup[Capability.image].fallbacks == ("luma", "local")
    report = (tmp_path / "out" / "campaigns" / "hand-over" / "index.html").read_text()
    assert "Passed over while running: runway: auth:" in report


def test_an_empty_account_hands_over_as_a_refused_key_does():
    """Each kind that says a vendor cannot serve the run moves the request on; the asset says why."""
    pick = Pick(name="runway", fallbacks=("luma", "local"))
    asked: list[str] = []

    async def make(spec: AssetSpec) -> Asset:
        asked.append(spec.provider)
        if spec.provider == "runway":
            raise ProviderError(
                ErrorKind.insufficient_credits, "You do not have enough credits", provider="runway"
            )
        if spec.provider == "luma":
            raise ProviderError(ErrorKind.not_configured, "no Luma key", provider="luma")
        return Asset(spec_key=spec.key(), kind=spec.kind, provider=spec.provider, model=spec.model,
                     prompt=spec.prompt, uri="file:///x.png", sha256="0" * 64, mime="image/png")  # fmt: skip

    run = str(uuid.uuid4())
    spec = AssetSpec(kind=AssetKind.image, provider="runway", model="gen4_image", prompt="a kite")
    made = asyncio.run(fallback.first_that_serves(pick, spec, make, run))
    assert asked == ["runway", "luma", "local"] and made.provider == "local"
    assert [n.split(":")[0:2] for n in made.passed_over] == [["runway", " insufficient_credits"],
                                                             ["luma", " not_configured"]]  # fmt: skip
    asyncio.run(fallback.first_that_serves(pick, spec, make, run))
    assert asked[3:] == ["local"]  # the run does not ask them again


def test_a_moderation_refusal_is_rephrased_never_handed_to_another_vendor(vendors_on_their_own_urls, tmp_path,
                                                                          monkeypatch):  # fmt: skip
    sim = vendors_on_their_own_urls
    monkeypatch.setenv("RUNWAYML_API_SECRET", declarations.vendor("runway").simulator.key)
    sim.configure(fault_rate=1.0, faults=["moderation"])
    manifest = run(BRIEF, tmp_path / "out")

    (story,) = manifest.stories
    assert story.status is StoryStatus.needs_review, story.error
    assert "refused it twice (moderation_input)" in story.error
    prompts = [
        r["body"]["promptText"] for r in sim.requests() if r["path"] == RUNWAY_CREATE and r["status"] == 200
    ]
    assert len(prompts) == 2 and prompts[1].endswith("family-friendly, safe for work")
    assert accepted(sim, LUMA_CREATE) == 0


def test_a_request_moves_to_another_vendor_as_that_vendors_request():
    keyframe = InputRef(role="keyframe", uri="https://cdn.example.com/k.png", sha256="0" * 64)
    style = InputRef(role="style_reference", uri="https://cdn.example.com/s.png", sha256="1" * 64)
    clip = AssetSpec(kind=AssetKind.video, provider="luma", model="ray-2", prompt="p", duration_s=9.0,
                     options={"resolution": "720p"}, inputs=(keyframe,))  # fmt: skip
    moved = fallback.on(clip, "runway")
    assert (moved.provider, moved.model, moved.duration_s, moved.options) == ("runway", "gen4_turbo", 9.0, {})
    assert fallback.on(clip.model_copy(update={"duration_s": 7.0}), "luma").duration_s == 7.0  # same vendor
    assert fallback.on(clip.model_copy(update={"duration_s": 7.0}), "runway").duration_s == 7.0
    still = AssetSpec(kind=AssetKind.image, provider="luma", model="photon-1", prompt="p", inputs=(style,))
    assert fallback.on(still, "local").inputs == (style,)  # the local canvas takes a style reference too
    assert registry.check(fallback.on(clip, "local")) is None


def test_refusals_and_passing_faults_do_not_move_a_request():
    pick = Pick(name="runway", fallbacks=("luma",))
    run = str(uuid.uuid4())
    for kind in (ErrorKind.moderation_input, ErrorKind.rate_limited, ErrorKind.generation_failed):
        assert not fallback.moves_on(ProviderError(kind, "x"))
    assert fallback.moves_on(ProviderError(ErrorKind.auth, "x"))
    fallback.unusable("runway", ProviderError(ErrorKind.auth, "key refused", provider="runway"), run)
    assert fallback.candidates(pick, run) == ["luma"]
    assert fallback.candidates(pick, "another run") == ["runway", "luma"]  # one run's finding stays its own
