"""What a campaign run made: the record behind manifest.json and the HTML report."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import BinaryIO

from pydantic import BaseModel, Field

from cutroom.assets import Asset
from cutroom.brief import Brief
from cutroom.channels import Aspect, Channel
from cutroom.ledger import LedgerSummary
from cutroom.lineup import Lineup
from cutroom.plan import Plan
from cutroom.prd import Prd


class StoryStatus(StrEnum):
    complete = "complete"
    failed = "failed"
    over_budget = "over_budget"
    needs_review = "needs_review"
    dropped = "dropped"  # a reviewer left it out: its reason is the result's error


class CampaignStatus(StrEnum):
    complete = "complete"
    partial = "partial"
    failed = "failed"


class StoryResult(BaseModel):
    story_id: str
    status: StoryStatus
    error: str | None = Field(default=None, description="Which step failed and why, when it did.")
    keyframe: Asset | None = Field(default=None, description="The best-scoring keyframe image.")
    candidates: list[Asset] = Field(default_factory=list, description="Every keyframe iteration, in order.")
    clips: list[Asset] = Field(
        default_factory=list,
        description="A clip per shot; an avatar story's presenter speaking its voice-over.",
    )
    voice: Asset | None = None
    render: Asset | None = Field(
        default=None, description="The story in the brand's template, when it has one."
    )

    @property
    def assets(self) -> list[Asset]:
        return [*self.candidates, *self.clips, *(a for a in (self.voice, self.render) if a)]


class Export(BaseModel):
    channel: Channel
    aspect: Aspect
    uri: str
    sha256: str
    duration_s: float
    width: int
    height: int
    stories: list[str] = Field(description="Story ids cut into this reel, in order.")


class FailedReel(BaseModel):
    """A reel that could not be cut: its stories stay made and paid for, and a rerun tries it again."""

    channel: Channel
    aspect: Aspect
    stories: list[str] = Field(description="Story ids it would have cut together, in order.")
    error: str = Field(description="Why it could not be assembled.")


class Manifest(BaseModel):
    campaign: str
    campaign_id: str
    status: CampaignStatus
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    run_id: str | None = None
    brief: Brief
    prd: Prd | None = Field(
        default=None, description="The campaign PRD its planner wrote (kept here, not in plan)."
    )
    plan: Plan
    stories: list[StoryResult]
    exports: list[Export] = Field(default_factory=list)
    failed_reels: list[FailedReel] = Field(
        default_factory=list, description="Reels that could not be assembled, and why."
    )
    ledger: LedgerSummary
    reused_assets: int = Field(default=0, description="Assets an earlier run made that this run reused.")
    lineup: Lineup | None = Field(
        default=None,
        description="Which provider and model did each capability, and why others were passed over.",
    )

    @property
    def assets(self) -> list[Asset]:
        return [a for s in self.stories for a in s.assets]


def write_manifest(manifest: Manifest, fh: BinaryIO) -> None:
    """manifest.json, as `model_dump_json(indent=2, by_alias=True)` writes it, a story at a time: at 10,000
    stories the whole text is ≈ 100 MB, held once as text and again as bytes to store it."""
    head = manifest.model_copy(update={"stories": []}).model_dump_json(indent=2, by_alias=True)
    before, after = head.split('\n  "stories": [],\n', 1)  # the top level's key: deeper ones sit further in
    fh.write(f'{before}\n  "stories": ['.encode())
    for n, story in enumerate(manifest.stories):
        record = story.model_dump_json(indent=2, by_alias=True).replace("\n", "\n    ")
        fh.write(f"{',' if n else ''}\n    {record}".encode())
    closing = "\n  ]" if manifest.stories else "]"
    fh.write(f"{closing},\n{after}".encode())
