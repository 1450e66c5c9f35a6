"""The declared vendors: who is ready here and why not, the lineup a brief's preferences make, prices a user
changes without editing code, plugin vendors, and job ids checked before they reach a URL."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from cutroom.assets import AssetKind, AssetSpec, InputRef
from cutroom.brief import parse_brief
from cutroom.capabilities import Capability
from cutroom.specs import clip_spec
from providers import declarations, registry, simulation
from providers.declarations import DeclarationError
from providers.errors import ErrorKind, ProviderError
from providers.local.planner import LocalPlanner
from tests.helpers import cutroom

BRIEF = {
    "campaign": "Lineup",
    "brand": {"name": "Ibis", "palette": ["#2B2D42", "#EF233C"]},
    "goal": "sell walking boots",
    "audience": "hikers",
    "channels": ["tiktok"],
}


@pytest.fixture
def no_keys(monkeypatch, tmp_path):
    for vendor in declarations.vendors().values():
        for key in vendor.keys:
            monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv(simulation.SIMULATOR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env with keys in it


@pytest.fixture
def fresh(monkeypatch):
    """Declarations read again for this test (a changed CUTROOM_CARDS or plugin), and again after it."""
    registry.reset()
    yield
    registry.reset()


def test_vendors_need_their_key_and_fall_back_to_local(no_keys):
    choice = registry.choose(Capability.video, ["runway", "luma"])
    assert choice.name == "local"
    assert choice.passed_over == ["runway: set RUNWAYML_API_SECRET", "luma: set LUMAAI_API_KEY"]


def test_the_simulator_makes_every_vendor_ready(no_keys, monkeypatch):
    monkeypatch.setenv(simulation.SIMULATOR_ENV, "http://127.0.0.1:9")
    assert registry.choose(Capability.video, ["runway"]).name == "runway"
    assert all(vendor.missing() is None for vendor in declarations.vendors().values())


def test_a_key_in_the_env_file_makes_a_vendor_ready(no_keys, tmp_path):
    (tmp_path / ".env").write_text("RUNWAYML_API_SECRET=key_abc\n")
    from cutroom import settings

    settings._dotenv.cache_clear()
    try:
        assert registry.choose(Capability.video, ["runway"]).name == "runway"
    finally:
        settings._dotenv.cache_clear()


def test_nothing_ready_says_why(no_keys, monkeypatch):
    monkeypatch.setattr(registry, "FALLBACK", ())
    with pytest.raises(ProviderError) as caught:
        registry.choose(Capability.video, ["luma"])
    assert caught.value.kind is ErrorKind.not_configured and "luma: set LUMAAI_API_KEY" in str(caught.value)


def test_the_lineup_names_where_a_run_moves_when_its_vendor_fails_it(no_keys, monkeypatch):
    monkeypatch.setenv("LUMAAI_API_KEY", "luma-test")
    monkeypatch.setenv("RUNWAYML_API_SECRET", "key_test")
    lineup = registry.lineup({"image": ["runway", "luma"]})
    assert (lineup[Capability.image].name, lineup[Capability.image].fallbacks) == (
        "runway",
        ("luma", "local"),
    )
    assert lineup[Capability.video].name == "local" and lineup[Capability.video].fallbacks == ()


def test_the_lineup_carries_the_video_models_durations_into_clip_specs(no_keys, monkeypatch):
    monkeypatch.setenv(simulation.SIMULATOR_ENV, "http://127.0.0.1:9")
    brief = parse_brief({**BRIEF, "providers": {"video": ["luma"]}})
    video = registry.lineup(brief.providers)[Capability.video]
    assert (video.name, video.model, video.durations_s) == ("luma", "ray-2", (5.0, 9.0))
    story = LocalPlanner().plan(brief).stories[0]
    ref = InputRef(role="keyframe", uri="https://example.com/k.png", sha256="0" * 64)
    durations = [clip_spec(s, brief, "luma", "ray-2", ref, video.durations_s).duration_s for s in story.shots]
    assert [s.duration_s for s in story.shots] == [4.0, 4.0, 4.0] and durations == [5.0, 5.0, 5.0]
    assert clip_spec(story.shots[0], brief, "local", "animatic-1", ref).duration_s == 4.0


def test_a_user_changes_prices_and_limits_in_a_cards_file(fresh, monkeypatch, tmp_path):
    cards = tmp_path / "cards.toml"
    cards.write_text(
        textwrap.dedent(
            """
            [runway.limits]
            concurrency = 5

            [[runway.models]]
            model = "gen4_turbo"
            price = { unit = "second", usd = 0.07, source = "our contract" }
            """
        )
    )
    monkeypatch.setenv("CUTROOM_CARDS", str(cards))
    runway = declarations.vendor("runway")
    card = runway.card("gen4_turbo")
    spec = AssetSpec(kind=AssetKind.video, provider="runway", model="gen4_turbo", prompt="p", duration_s=10)
    assert card.price_of(spec) == pytest.approx(0.7) and not card.price.unverified
    assert card.durations_s == (2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0)  # the rest of the card stays
    assert registry.limits("runway").concurrency == 5
    assert runway.card("gen4.5").price.usd == 0.12  # models the file does not name keep their price


def test_a_cards_file_naming_an_unknown_vendor_is_refused(fresh, monkeypatch, tmp_path):
    cards = tmp_path / "cards.toml"
    cards.write_text("[lumaa.limits]\nconcurrency = 2\n")
    monkeypatch.setenv("CUTROOM_CARDS", str(cards))
    with pytest.raises(DeclarationError, match="unknown vendors: lumaa"):
        declarations.vendors()


PLUGIN = """
from cutroom.capabilities import Capability
from providers.declarations import Vendor
from providers.cards import ModelCard, Price
from providers.sync import SyncGenerator

VENDOR = Vendor(
    name="acme", title="Acme Images", keys=("ACME_KEY",), adapters={Capability.image: "acme_cutroom:AcmeImage"},
    models=(ModelCard(provider="acme", model="acme-1", capability=Capability.image, default=True,
                      price=Price(unit="image", usd=0.5)),),
)


class AcmeImage(SyncGenerator):
    name = "acme"
    capability = Capability.image
    model = "acme-1"
"""


def _install_plugin(site: Path) -> None:
    """A package that declares a vendor through the `cutroom.providers` entry-point group, as pip leaves it."""
    (site / "acme_cutroom.py").write_text(PLUGIN)
    info = site / "acme_cutroom-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-cutroom\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[cutroom.providers]\nacme = acme_cutroom:VENDOR\n")


def test_a_plugin_package_adds_a_vendor(fresh, monkeypatch, tmp_path):
    _install_plugin(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    acme = declarations.vendor("acme")
    assert acme.card("acme-1").price.usd == 0.5 and "acme" in registry.known(Capability.image)
    assert registry.adapter_class(Capability.image, "acme").__name__ == "AcmeImage"


def test_cutroom_providers_lists_plugin_vendors_beside_built_in_ones(tmp_path):
    _install_plugin(tmp_path)
    listed = cutroom("providers", env={"PYTHONPATH": str(tmp_path), "ACME_KEY": "k"})
    assert listed.returncode == 0, listed.stderr
    rows = {line.split("│")[2].strip() for line in listed.stdout.splitlines() if line.count("│") >= 4}
    assert {"acme", "luma", "runway", "local"} <= rows


def test_job_ids_are_checked_against_their_vendor_before_they_reach_a_url():
    job = str(uuid.uuid4())
    assert registry.parse_job(f"luma:{job}") == ("luma", job)
    assert registry.parse_job("~/clips/kite.mp4") is None and registry.parse_job("https://x/y.png") is None
    for bad in ("luma:../../x", "runway:abc/def", f"luma:{job}?x=1", "luma:"):
        with pytest.raises(ProviderError) as caught:
            registry.parse_job(bad)
        assert caught.value.kind is ErrorKind.invalid_input and "is not a" in caught.value.detail


def test_every_declared_adapter_imports_and_speaks_for_its_capability():
    code = (
        "from providers import declarations, registry\n"
        "for v in declarations.vendors().values():\n"
        "    for cap in v.adapters:\n"
        "        cls = registry.adapter_class(cap, v.name)\n"
        "        assert getattr(cls, 'capability', cap) == cap, (v.name, cap)\n"
        "        assert v.default_model(cap), (v.name, cap)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
