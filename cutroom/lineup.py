"""Which provider and model does each capability for one campaign, and why others were passed over."""

from __future__ import annotations

from pydantic import BaseModel, Field

from cutroom.capabilities import Capability


class Pick(BaseModel, frozen=True):
    name: str
    model: str = ""
    durations_s: tuple[float, ...] = ()
    inputs: tuple[str, ...] = Field(
        default=(), description="Input roles the model takes (keyframe, style_reference …)."
    )
    fallbacks: tuple[str, ...] = Field(
        default=(),
        description="Providers to move to, in order, when this one turns out not to be usable at run time "
        "(no key, a refused key, no credits).",
    )


class Lineup(BaseModel, frozen=True):
    picks: dict[Capability, Pick]
    notes: tuple[str, ...] = ()

    def __getitem__(self, capability: Capability) -> Pick:
        return self.picks[capability]

    def providers(self) -> set[str]:
        """Every provider the lineup may use, fallbacks included."""
        return {name for pick in self.picks.values() for name in (pick.name, *pick.fallbacks)}
