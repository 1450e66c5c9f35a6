"""Which provider and model does each capability for one campaign, and why others were passed over."""

from __future__ import annotations

from pydantic import BaseModel, Field

from cutroom.capabilities import Capability
from cutroom.plan import Shot


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

    @property
    def entry(self) -> str:
        """'name:model', as a brief names it: how a planner, judge or refiner is handed to a task."""
        return f"{self.name}:{self.model}" if self.model else self.name


class Lineup(BaseModel, frozen=True):
    picks: dict[Capability, Pick]
    hero_video: Pick | None = Field(
        default=None,
        description="The engine for each story's hero shot, when the brief names one of its own.",
    )
    notes: tuple[str, ...] = ()

    def __getitem__(self, capability: Capability) -> Pick:
        return self.picks[capability]

    def video_for(self, shot: Shot) -> Pick:
        """The engine a shot is made on: the hero engine for a hero shot, where the brief names one."""
        return self.hero_video if shot.hero and self.hero_video else self.picks[Capability.video]

    def providers(self) -> set[str]:
        """Every provider the lineup may use, fallbacks included."""
        every = [*self.picks.values(), *([self.hero_video] if self.hero_video else [])]
        return {name for pick in every for name in (pick.name, *pick.fallbacks)}
