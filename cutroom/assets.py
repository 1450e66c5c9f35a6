"""What to make (AssetSpec) and what was made (Asset), with its score and lineage."""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum

from pydantic import BaseModel, Field

from cutroom.capabilities import AssetKind
from cutroom.channels import Aspect
from cutroom.plan import CameraMotion

__all__ = ["Asset", "AssetKind", "AssetSpec", "InputRef", "Operation", "OptionValue", "Score", "Style"]

#: A model option's value, as a model card's options declare it.
OptionValue = str | int | float | bool


class Operation(StrEnum):
    """What a spec asks of a provider besides making something new: work on its `source` input."""

    modify = "modify"
    reframe = "reframe"
    upscale = "upscale"
    add_audio = "add_audio"
    enhance_frame_rate = "enhance_frame_rate"


class InputRef(BaseModel, frozen=True):
    """An asset another generation starts from (a keyframe, a previous clip's last frame)."""

    role: str = Field(description="keyframe | first_frame | last_frame | reference | source")
    uri: str
    sha256: str
    url: str | None = Field(default=None, description="A public link to the same image, where one exists.")
    continues: str | None = Field(
        default=None, description="'provider:job_id' of the generation this input is the last frame of."
    )
    continues_model: str | None = Field(
        default=None, description="The model that made that generation (a vendor extends its own API's only)."
    )


class Continuity(StrEnum):
    """How a shot that continues the previous one was joined to it."""

    chained = "chained"  # the vendor extended the previous generation itself
    last_frame = "last_frame"  # the previous clip's last frame was the start image


class Style(BaseModel, frozen=True):
    """Brand traits a renderer carries into the picture."""

    brand: str
    palette: tuple[str, ...]
    headline: str = ""
    logo_sha256: str | None = None


class AssetSpec(BaseModel, frozen=True):
    """One generation request. Its key() is what a paid call is cached and journaled under."""

    kind: AssetKind
    provider: str
    model: str
    prompt: str
    aspect: Aspect | None = None
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    fps: int | None = None
    camera_motion: CameraMotion | None = None
    voice: str | None = None
    style: Style | None = None
    inputs: tuple[InputRef, ...] = ()
    seed: int = 0
    operation: Operation | None = Field(
        default=None, description="Work on the `source` input instead of making anew."
    )
    loop: bool = Field(default=False, description="A clip whose end flows back into its start.")
    options: dict[str, OptionValue] = Field(
        default_factory=dict,
        description="The model's own settings (a Luma modify mode, a Stability style preset, an upscale "
        "target …), checked against its model card's options before anything is paid for.",
    )

    def key(self) -> str:
        # Defaults left out: a new optional field must not change the key of every spec already paid for.
        canonical = json.dumps(
            self.model_dump(mode="json", exclude_defaults=True), sort_keys=True, separators=(",", ":")
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


class WordTiming(BaseModel, frozen=True):
    word: str
    start_s: float
    end_s: float


class Score(BaseModel):
    total: float = Field(ge=0, le=100)
    criteria: dict[str, float] = Field(description="Per-criterion scores, 0-100 each.")
    judge: str = "local"
    reasons: dict[str, str] = Field(
        default_factory=dict,
        description="Why a criterion scored what it did, where the judge says (a vision judge).",
    )

    def weakest(self, n: int = 2) -> list[str]:
        return [name for name, _ in sorted(self.criteria.items(), key=lambda kv: kv[1])[:n]]


class Asset(BaseModel):
    """A stored piece of media: where it is, what made it, what it cost, how good it is."""

    spec_key: str
    kind: AssetKind
    provider: str
    model: str
    prompt: str
    params: dict = Field(default_factory=dict)
    uri: str
    sha256: str
    mime: str
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    cost_usd: float = 0.0
    story_id: str | None = None
    iteration: int = 1
    parent: str | None = Field(default=None, description="sha256 of the asset this one refines or continues.")
    score: Score | None = None
    words: list[WordTiming] = Field(default_factory=list)
    run_id: str | None = Field(default=None, description="The flow run that paid for it.")
    job_id: str | None = Field(default=None, description="The provider's id for the job that made it.")
    continuity: Continuity | None = Field(
        default=None, description="For a shot that continues the previous one: how it was joined to it."
    )
    source_url: str | None = Field(default=None, description="Where the provider served it (links expire).")
    passed_over: list[str] = Field(
        default_factory=list,
        description="Providers the brief preferred that could not make it, and why (no key, no credits …).",
    )
