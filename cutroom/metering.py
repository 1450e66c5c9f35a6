"""Where a language model's paid calls are entered: the campaign ledger of the step that asks.

A planner, judge or refiner is called deep inside a task; the task says which campaign, budget and story its
calls belong to by running them `charged_to` that campaign's ledger. A call made outside any (`cutroom plan`,
which belongs to no run) is paid for and entered nowhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from cutroom.ledger import Ledger, ledger_for
from cutroom.storage import open_storage


@dataclass(frozen=True)
class Meter:
    ledger: Ledger
    budget_usd: float | None
    story_id: str | None


_meter: ContextVar[Meter | None] = ContextVar("meter", default=None)


@contextmanager
def charged_to(ledger: Ledger, budget_usd: float | None, story_id: str | None = None) -> Iterator[None]:
    token = _meter.set(Meter(ledger, budget_usd, story_id))
    try:
        yield
    finally:
        _meter.reset(token)


def meter() -> Meter | None:
    return _meter.get()


def charged_to_campaign(
    out: str, campaign_id: str, budget_usd: float | None, story_id: str | None = None
) -> AbstractContextManager[None]:
    """Charge the calls of a step to the campaign kept at `out`."""
    return charged_to(ledger_for(open_storage(out), campaign_id), budget_usd, story_id)
