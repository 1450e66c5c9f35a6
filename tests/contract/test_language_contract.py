"""One contract every language-model vendor meets, through its real adapter and SDK against its simulator.

A vendor gets these tests by being declared with a planner, judge or refiner adapter and a simulator mount. What
is checked, through `LanguageModel.ask` as the planner, judge and refiner use it:
- an answer of the asked form, validated, with its tokens priced from the card and entered in the ledger once;
- an answer that is not JSON or does not follow its form is sent back once and repaired;
- twice wrong, the step fails as invalid_output naming the field; a refusal is moderation_input, a cut-off answer
  invalid_output naming the max tokens: none of them retried blindly;
- a 429 is waited out and a 5xx tried again, the failed calls never billed;
- a refused key is `auth`; a call that would pass the budget is never sent.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field

from cutroom.capabilities import Capability
from cutroom.ledger import EntryState, Ledger, OverBudget
from cutroom.metering import charged_to
from cutroom.storage import LocalStorage
from providers import declarations, registry
from providers.declarations import Vendor
from providers.errors import ErrorKind, ProviderError
from providers.llm import LanguageModel, Question
from tests.simulator_fixture import SimulatorHandle

LANGUAGE = (Capability.planner, Capability.judge, Capability.refiner)


def language_vendors() -> list[Vendor]:
    return [
        vendor
        for vendor in declarations.vendors().values()
        if vendor.simulator is not None and any(c in vendor.adapters for c in LANGUAGE)
    ]


VENDORS = language_vendors()


class Tagline(BaseModel):
    headline: str = Field(min_length=1, max_length=120)
    reasons: list[str] = Field(min_length=2, max_length=2)
    score: int = Field(ge=0, le=100)


QUESTION = Question(
    purpose="plan",
    system="You write taglines for a coffee brand.",
    user="A tagline for Harbour Cafe's winter menu, with two reasons and a score.",
)


def model_of(vendor: Vendor, sim: SimulatorHandle, **changes: Any) -> LanguageModel:
    cls = type(registry.provider(Capability.planner, vendor.name).llm)
    settings = {
        "base_url": sim.url + vendor.simulator.prefix,
        "api_key": vendor.simulator.key,
        "time_scale": 0.01,
    }
    return cls(Capability.planner, **{**settings, **changes})


def calls(sim: SimulatorHandle, vendor: Vendor) -> list[dict[str, Any]]:
    prefix = vendor.simulator.prefix
    return [
        r
        for r in sim.requests()
        if r["path"].startswith(prefix) and not r["path"].startswith(f"{prefix}/_sim")
    ]


@pytest.fixture
def sim(simulator: SimulatorHandle):
    simulator.reset(latency_scale=0.001, latency_jitter=0, retry_after_s=0.05)
    yield simulator
    simulator.reset()


@pytest.fixture
def ledger(tmp_path) -> Ledger:
    return Ledger(LocalStorage(tmp_path), "contract")


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.name)
def test_an_answer_of_the_asked_form_is_priced_and_entered_once(vendor, sim, ledger):
    llm = model_of(vendor, sim)
    with charged_to(ledger, budget_usd=5.0, story_id="s01"):
        answer = llm.ask(QUESTION, Tagline)
    assert isinstance(answer, Tagline) and len(answer.reasons) == 2
    [entry] = ledger.entries()
    card = vendor.card(llm.model, Capability.planner)
    assert entry.state is EntryState.settled and entry.provider == vendor.name and entry.story_id == "s01"
    assert 0 < entry.paid_usd < card.tokens.of(100_000, 100_000)
    assert "tokens in" in entry.note and len(calls(sim, vendor)) == 1


@pytest.mark.parametrize("fault", ["invalid_json", "schema_violation"])
@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.name)
def test_a_wrong_answer_is_sent_back_once_then_fails_naming_the_field(vendor, fault, sim):
    sim.configure(fault_rate=1.0, faults=[fault])
    with pytest.raises(ProviderError) as failed:
        model_of(vendor, sim).ask(QUESTION, Tagline)
    assert failed.value.kind is ErrorKind.invalid_output and not failed.value.kind.transient
    assert "did not follow its form twice" in failed.value.detail
    assert len(calls(sim, vendor)) == 2  # the first answer and one repair round: never a third


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.name)
def test_an_invalid_first_answer_is_repaired_in_one_round(vendor, sim):
    llm = model_of(vendor, sim)
    for seed in range(8):  # half the answers are faulted: find a run whose first answer is and second is not
        sim.reset(latency_scale=0.001, latency_jitter=0, fault_rate=0.5, faults=["invalid_json"], seed=seed)
        try:
            answer = llm.ask(QUESTION, Tagline)
        except ProviderError:
            continue
        if len(calls(sim, vendor)) == 2:
            assert isinstance(answer, Tagline)
            return
    pytest.fail("no invalid first answer was repaired in one round")


@pytest.mark.parametrize(("fault", "kind", "says"), [
    ("refusal", ErrorKind.moderation_input, "refused to answer"),
    ("truncated", ErrorKind.invalid_output, "cut off at"),
])  # fmt: skip
@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.name)
def test_a_refusal_or_a_cut_off_answer_fails_at_once_and_clearly(vendor, fault, kind, says, sim):
    sim.configure(fault_rate=1.0, faults=[fault])
    with pytest.raises(ProviderError) as failed:
        model_of(vendor, sim).ask(QUESTION, Tagline)
    assert failed.value.kind is kind and says in failed.value.detail
    assert len(calls(sim, vendor)) == 1


@pytest.mark.parametrize("fault", ["429", "5xx", "reset", "malformed"])
@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.name)
def test_rate_limits_and_hiccups_are_waited_out_and_never_billed(vendor, fault, sim, ledger):
    sim.configure(fault_rate=0.5, faults=[fault], seed=1)
    with charged_to(ledger, budget_usd=5.0):
        model_of(vendor, sim).ask(QUESTION, Tagline)
    sent = calls(sim, vendor)
    assert len(sent) > 1 and any(r["fault"] == fault for r in sent)
    [entry] = ledger.entries()
    assert entry.state is EntryState.settled and entry.paid_usd > 0


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.name)
def test_a_refused_key_is_an_auth_error(vendor, sim):
    with pytest.raises(ProviderError) as failed:
        model_of(vendor, sim, api_key="not-a-real-key").ask(QUESTION, Tagline)
    assert failed.value.kind is ErrorKind.auth


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.name)
def test_a_call_that_would_pass_the_budget_is_never_sent(vendor, sim, ledger):
    with charged_to(ledger, budget_usd=0.0001), pytest.raises(OverBudget):
        model_of(vendor, sim).ask(QUESTION, Tagline)
    assert calls(sim, vendor) == []


def test_every_language_vendor_is_in_the_contract():
    assert {v.name for v in VENDORS} >= {"openai", "anthropic"}
