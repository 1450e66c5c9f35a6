"""The language-model brain on the simulator: the PRD planner, the vision judge and the refiner, alone (no
Prefect), then in campaigns planned, judged and refined by OpenAI and by Anthropic."""

from __future__ import annotations

import asyncio
import json

import pytest
from markupsafe import escape
from PIL import Image

from cutroom.assets import AssetKind, AssetSpec, Score, Style
from cutroom.brief import parse_brief
from cutroom.capabilities import Capability
from cutroom.channels import Aspect
from cutroom.ledger import Ledger
from cutroom.manifest import StoryStatus
from cutroom.metering import charged_to
from cutroom.plan import StoryType
from cutroom.storage import LocalStorage
from providers import registry, simulation
from providers.cards import ModelCard
from providers.declarations import Vendor
from providers.errors import ErrorKind, ProviderError
from providers.local.image import LocalImage
from providers.protocol import Output

BANK = {
    "campaign": "Northbank Savers",
    "brand": {"name": "Northbank", "voice": "warm, plain-spoken", "palette": ["#0B3D91", "#F2C14E"],
              "avoid": ["cheap"]},
    "goal": "Get young professionals to open a high-yield savings account",
    "audience": "Salaried 24-34 year olds in their first job",
    "channels": ["instagram", "tiktok", "linkedin", "email"],
}  # fmt: skip


@pytest.fixture
def on_simulator(simulator, monkeypatch):
    """Every adapter on the simulator, fast; the simulator back to its defaults after."""
    simulator.reset(latency_scale=0.001, latency_jitter=0)
    monkeypatch.setenv(simulation.SIMULATOR_ENV, simulator.url)
    registry.reset()
    simulation._latency_scale.cache_clear()
    yield simulator
    simulator.reset()
    registry.reset()
    simulation._latency_scale.cache_clear()


def texts_of(plan) -> str:
    return plan.model_dump_json(by_alias=True).lower()


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
def test_the_prd_planner_writes_a_prd_and_exactly_the_stories_asked_without_avoided_words(
    vendor, on_simulator, tmp_path
):
    """Eight stories come in two answers; the simulator is told to put the avoided word in every text it writes,
    and not one copy, prompt or voice-over ships with it."""
    on_simulator.configure(llm_inject="cheap")
    brief = parse_brief({**BANK, "stories": 8})
    ledger = Ledger(LocalStorage(tmp_path), brief.campaign_id)
    with charged_to(ledger, brief.budget_usd):
        plan = registry.provider(Capability.planner, vendor).plan(brief)
    assert plan.prd is not None and plan.prd.kpis and plan.prd.channel_strategy
    assert [s.channel.value for s in plan.stories] == [*BANK["channels"], *BANK["channels"]]
    assert len({s.id for s in plan.stories}) == 8
    for story in plan.stories:
        assert story.acceptance_criteria and story.user_story
        assert (story.type is StoryType.email) == (story.channel.value == "email")
        assert bool(story.shots) == (story.type is not StoryType.design)
        assert len(story.voice_over.split()) <= story.duration_s * 2.5 + 1
    assert "cheap" not in texts_of(plan)
    calls = [e for e in ledger.entries() if e.provider == vendor]
    assert len(calls) >= 3 and all(e.paid_usd > 0 for e in calls)  # the PRD, then two answers of stories


def test_an_endpoint_without_json_schema_is_asked_in_json_mode(on_simulator, monkeypatch, tmp_path):
    """An OpenAI-compatible model that takes JSON mode only (a model no card knows, priced at nothing)."""
    monkeypatch.setenv("OPENAI_MODEL", "gpt-3.5-turbo")
    monkeypatch.setenv("CUTROOM_LLM_MAX_TOKENS", "4000")
    registry.reset()
    brief = parse_brief({**BANK, "channels": ["linkedin"]})
    ledger = Ledger(LocalStorage(tmp_path), brief.campaign_id)
    with charged_to(ledger, brief.budget_usd):
        plan = registry.provider(Capability.planner, "openai").plan(brief)
    assert len(plan.stories) == 1 and plan.prd is not None
    formats = [
        r["body"]["response_format"]["type"]
        for r in on_simulator.requests()
        if r["path"].endswith("/chat/completions")
    ]
    assert formats[0] == "json_schema" and set(formats[1:]) == {"json_object"}
    assert all(e.paid_usd == 0 for e in ledger.entries())


@pytest.fixture
def keyframe(tmp_path) -> tuple:
    path = tmp_path / "keyframe.png"
    Image.new("RGB", (768, 432), (11, 61, 145)).save(path)
    spec = AssetSpec(
        kind=AssetKind.image, provider="local", model="brand-canvas-1", prompt="a saver smiling at her phone",
        aspect=Aspect.landscape, width=768, height=432,
        style=Style(brand="Northbank", palette=("#0B3D91", "#F2C14E"), headline="Your first salary, growing"),
    )  # fmt: skip
    return path, spec


def test_the_vision_judge_marks_each_criterion_with_a_reason_and_weighs_in_the_technical_score(
    on_simulator, keyframe, monkeypatch
):
    monkeypatch.setenv("CUTROOM_JUDGE_VISION_WEIGHT", "0.75")
    path, spec = keyframe
    brand = parse_brief(BANK).brand
    criteria = ("Shows a young professional", "The headline is legible", "Uses the brand's blue")
    technical = registry.provider(Capability.judge, "local").score(path, spec, brand)
    score = registry.provider(Capability.judge, "openai").score(path, spec, brand, criteria)
    vision = {k: v for k, v in score.criteria.items() if k not in technical.criteria}
    assert len(vision) == 6 + len(criteria) and set(score.reasons) == set(vision)
    assert all(score.reasons.values()) and score.judge == "openai"
    expected = 0.75 * sum(vision.values()) / len(vision) + 0.25 * technical.total
    assert score.total == pytest.approx(expected, abs=0.01)
    [sent] = [r for r in on_simulator.requests() if r["path"].endswith("/chat/completions")]
    assert "image_url" in json.dumps(sent["body"])  # the model saw the picture


def test_the_refiner_rewrites_from_the_weakest_criteria_and_never_into_an_avoided_word(on_simulator):
    on_simulator.configure(llm_inject="cheap")
    score = Score(
        total=41, criteria={"subject_present": 20, "brand_fit": 90}, reasons={"subject_present": "no saver"}
    )
    refiner = registry.provider(Capability.refiner, "anthropic")
    prompt = "a saver smiling at her phone"
    rewritten = refiner.refine(prompt, score, 85, avoid=("cheap",))
    assert rewritten != prompt and "cheap" not in rewritten.lower()
    sent = [r for r in on_simulator.requests() if r["path"].endswith("/messages")]
    assert len(sent) == 2  # the answer carried the word: sent back once, then the word taken out
    assert "no saver" in json.dumps(sent[0]["body"])  # the judge's reason went to the model


class RefusesVertical(LocalImage):
    """The offline renderer behind an input moderation that refuses every vertical keyframe."""

    name = "refuses_vertical"

    def render(self, spec: AssetSpec) -> Output:
        if spec.aspect is Aspect.vertical:
            raise ProviderError(ErrorKind.moderation_input, "prompt refused by policy", provider=self.name)
        return super().render(spec)


@pytest.fixture
def refuses_vertical(request):
    vendor = Vendor(
        name="refuses_vertical", title="Refuses vertical", billable=False,
        adapters={Capability.image: "tests:RefusesVertical"},
        models=(ModelCard(provider="refuses_vertical", model="brand-canvas-1", capability=Capability.image),),
    )  # fmt: skip
    registry.register(vendor, {Capability.image: RefusesVertical})
    request.addfinalizer(lambda: registry.unregister("refuses_vertical"))


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
def test_a_campaign_planned_judged_and_refined_by_a_language_model(
    vendor, flows_on_simulator, refuses_vertical, tmp_path
):
    """The PRD in the manifest and report, each keyframe round's prompt and reasons in the report, every call in
    the ledger under the budget; a refused keyframe is rephrased once by the model, then left for review while the
    rest of the campaign completes."""
    from flows.campaign import campaign

    flows_on_simulator.reset(latency_scale=0.001, latency_jitter=0)
    brief = parse_brief({
        **BANK, "channels": ["tiktok", "linkedin"], "quality_target": 99, "max_iterations": 2, "budget_usd": 2.0,
        "providers": {"planner": [vendor], "judge": [vendor], "refiner": [vendor], "image": ["refuses_vertical"],
                      "video": ["local"]},
    })  # fmt: skip
    out = tmp_path / "out"
    manifest = asyncio.run(campaign(brief, str(out)))
    by_channel = {s.channel.value: s for s in manifest.plan.stories}
    results = {r.story_id: r for r in manifest.stories}
    tiktok, linkedin = results[by_channel["tiktok"].id], results[by_channel["linkedin"].id]
    assert tiktok.status is StoryStatus.needs_review and "refused it twice" in tiktok.error
    assert linkedin.status is StoryStatus.complete and manifest.status == "partial"
    assert [a.iteration for a in linkedin.candidates] == [1, 2]  # the target is out of reach: refined once
    assert linkedin.candidates[0].prompt != linkedin.candidates[1].prompt
    assert all(a.score.reasons for a in linkedin.candidates)
    assert manifest.prd is not None and manifest.plan.prd is None  # kept once, at the top
    paid = [e for e in manifest.ledger.entries if e.provider == vendor]
    purposes = {e.note.split(" ")[1].rstrip(":") for e in paid}
    assert {"plan", "judge", "refine", "rephrase"} <= purposes
    assert 0 < manifest.ledger.spent_usd <= brief.budget_usd
    report = (out / "campaigns" / brief.campaign_id / "index.html").read_text()
    assert "Campaign PRD" in report and escape(manifest.prd.summary[:40]) in report
    reason = next(iter(linkedin.candidates[1].score.reasons.values()))
    assert escape(reason[:40]) in report
