"""Engines per shot: a brief names `provider:model` and may give each story's hero shot engines of its own;
`cutroom plan` shows each shot's engine and cost before anything is paid, and the campaign makes each shot there,
joining a continuing shot to the one before as its engine allows, with the ledger matching the plan."""

from __future__ import annotations

import asyncio
import json

import pytest
import yaml

from cutroom.assets import AssetKind, AssetSpec, Continuity, InputRef
from cutroom.brief import BriefError, parse_brief
from cutroom.capabilities import Capability
from cutroom.manifest import StoryStatus
from providers import declarations, registry
from tasks.plan import estimate_plan, lineup_for
from tests.helpers import cutroom

BRIEF = {
    "campaign": "Mixed Engines",
    "brand": {"name": "Osprey", "palette": ["#0D1B2A", "#E0E1DD", "#FF6B35"]},
    "goal": "sell sea kayak tours",
    "audience": "weekend adventurers",
    "channels": ["tiktok"],
    "stories": 1,
    "quality_target": 1,
    "max_iterations": 1,
    "providers": {"video": {"hero": ["runway:gen4.5", "luma"], "default": ["luma:ray-flash-2", "local"]}},
}
KEYS = {"RUNWAYML_API_SECRET": "key_" + "0" * 128, "LUMAAI_API_KEY": "luma-test"}


def test_a_brief_names_models_and_hero_engines_and_the_lineup_follows(monkeypatch):
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    lineup = lineup_for(parse_brief(BRIEF))
    assert (lineup.hero_video.name, lineup.hero_video.model) == ("runway", "gen4.5")
    assert (lineup[Capability.video].name, lineup[Capability.video].model) == ("luma", "ray-flash-2")
    assert {"runway", "luma", "local"} <= lineup.providers()


@pytest.mark.parametrize(
    ("providers", "says"),
    [
        ({"video": ["luma:ray-9"]}, "'providers.video' names 'luma:ray-9': luma has no video model 'ray-9'"),
        ({"video": {"hero": ["nobody"], "default": ["local"]}}, "'providers.video.hero' names 'nobody'"),
        ({"image": {"hero": ["luma"], "default": ["local"]}}, "only video takes {hero, default} engines"),
        ({"video": {"hero": ["luma"]}}, "default"),
    ],
)
def test_a_brief_naming_engines_wrongly_is_refused_before_anything_runs(providers, says, tmp_path):
    brief = tmp_path / "brief.yaml"
    brief.write_text(yaml.safe_dump({**BRIEF, "providers": providers}))
    planned = cutroom("plan", str(brief))
    assert planned.returncode == 2, planned.stdout
    assert says in " ".join((planned.stdout + planned.stderr).split())
    assert "Traceback" not in planned.stdout + planned.stderr


def test_a_brief_with_split_engines_parses_and_a_plain_list_still_does():
    assert parse_brief(BRIEF).hero_engines
    plain = parse_brief({**BRIEF, "providers": {"video": ["luma", "local"]}})
    assert not plain.hero_engines and plain.preferences(hero=True) == {"video": ["luma", "local"]}
    with pytest.raises(BriefError):
        parse_brief({**BRIEF, "providers": {"video": {"hero": [], "default": ["local"]}}})


def test_cutroom_plan_shows_each_shots_engine_model_and_cost(tmp_path):
    brief = tmp_path / "brief.yaml"
    brief.write_text(yaml.safe_dump(BRIEF))
    planned = cutroom("plan", str(brief), env={**KEYS, "COLUMNS": "200"})
    assert planned.returncode == 0, planned.stderr
    rows = [line for line in planned.stdout.splitlines() if "/" in line and "$" in line]
    assert len(rows) == 3, planned.stdout
    assert "1 hero" in rows[0] and "runway/gen4.5" in rows[0] and "$0.48" in rows[0]  # 4 s at $0.12/s
    assert (
        "luma/ray-flash-2" in rows[1] and "last frame" in rows[1]
    )  # another engine: joined by its last frame
    assert "luma/ray-flash-2" in rows[2] and "$0.14" in rows[2]  # 4 s snaps to Luma's 5 s at $0.027/s
    assert "hero shots → runway" in planned.stdout


def test_a_campaign_mixing_engines_per_shot_completes_as_planned_and_says_how_each_clip_was_made(
    flows_on_simulator, s3
):
    from cutroom.storage import S3Storage
    from flows.campaign import campaign

    flows_on_simulator.reset(latency_scale=0.01)
    brief = parse_brief({**BRIEF, "id": "mixed-engines"})
    out = f"s3://{s3.bucket}/mixed"
    planned = estimate_plan(
        registry.provider(Capability.planner, "local").plan(brief), brief, lineup_for(brief)
    )
    manifest = asyncio.run(campaign(brief, out))

    (story,) = manifest.stories
    assert story.status is StoryStatus.complete, story.error
    made = [(c.provider, c.model, c.continuity) for c in story.clips]
    assert made == [
        ("runway", "gen4.5", None),
        ("luma", "ray-flash-2", "last_frame"),
        ("luma", "ray-flash-2", None),
    ]
    # Priced per second on each card: what the vendors charged is what the plan said, within 5 %.
    assert manifest.ledger.spent_usd == pytest.approx(sum(planned.values()), rel=0.05)
    assert manifest.ledger.spent_usd == pytest.approx(sum(c.cost_usd for c in story.clips))

    storage = S3Storage(out)
    stored = json.loads(storage.read_bytes("campaigns/mixed-engines/manifest.json"))
    assert [c["continuity"] for c in stored["stories"][0]["clips"]] == [None, "last_frame", None]
    report = storage.read_bytes("campaigns/mixed-engines/index.html").decode()
    assert "runway/gen4.5 · $0.48" in report and "luma/ray-flash-2" in report
    assert "from the last frame of clip 1" in report


def test_cutroom_models_lists_every_video_card_with_its_price_and_whether_it_extends_its_own_clips():
    listed = cutroom("models", "--capability", "video", env={"COLUMNS": "400"})
    assert listed.returncode == 0, listed.stderr
    rows = {}
    for line in listed.stdout.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 8 and cells[0] not in ("provider", ""):
            rows[(cells[0], cells[1])] = cells
    cards = [card for vendor in declarations.vendors().values() for card in vendor.cards(Capability.video)]
    assert {(c.provider, c.model) for c in cards} == set(rows)
    for card in cards:
        price, notes = rows[(card.provider, card.model)][5], rows[(card.provider, card.model)][7]
        assert price == "free" if not card.price.usd else price.lstrip("≤ ").startswith("$"), (
            card.model,
            price,
        )
        assert ("extends its own clips" in notes) == card.chains, (card.model, notes)


@pytest.mark.parametrize(
    ("model", "after", "joined"),
    [
        ("ray-3.2", "ray-3.2", Continuity.chained),  # Agents extends its own generation
        ("ray-flash-2", "ray-2", Continuity.chained),  # both on Dream Machine
        ("ray-2", "ray-3.2", Continuity.last_frame),  # an Agents id means nothing to Dream Machine
        ("ray-3.2", "ray-2", Continuity.last_frame),
        ("ray-2", None, Continuity.chained),  # a user's `--image luma:<id>`: taken to be of this API
    ],
)
def test_a_shot_chains_only_from_a_generation_of_its_own_vendor_and_api(model, after, joined):
    generation = "luma:6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b"
    last = InputRef(role="keyframe", uri="s3://b/last.png", sha256="0" * 64, continues=generation,
                    continues_model=after)  # fmt: skip
    spec = AssetSpec(kind=AssetKind.video, provider="luma", model=model, prompt="a kayak", inputs=(last,))
    luma = declarations.vendor("luma")
    card = luma.card(model)

    assert card.continuity(spec) is joined
    assert (card.chained_from(spec) is not None) == (joined is Continuity.chained)
    if after is not None:  # what `cutroom plan` shows between two shots
        assert card.extends(luma.card(after)) == (joined is Continuity.chained)


def test_a_shot_after_another_vendors_clip_starts_from_its_last_frame():
    last = InputRef(role="keyframe", uri="s3://b/last.png", sha256="0" * 64,
                    continues="runway:6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b", continues_model="gen4.5")  # fmt: skip
    spec = AssetSpec(kind=AssetKind.video, provider="luma", model="ray-2", prompt="a kayak", inputs=(last,))
    card = declarations.vendor("luma").card("ray-2")
    assert card.continuity(spec) is Continuity.last_frame
    assert not card.extends(declarations.vendor("runway").card("gen4.5"))
