"""One asset a user asks for outside any campaign: `cutroom generate`, or the `generate` deployment's form.

The fields are what a user types; every rule that needs no provider knowledge is checked here, so a bad request
fails alike from the CLI and from a Prefect parameter, before anything is paid for.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cutroom.assets import AssetKind, Operation, OptionValue
from cutroom.channels import Aspect
from cutroom.plan import CameraMotion

#: The longest prompt (or voice-over text) a request may carry.
MAX_PROMPT_CHARS = 4000
DEFAULT_PALETTE = ("#1F2937", "#F59E0B", "#F9FAFB")


class AssetRequest(BaseModel, frozen=True):
    model_config = ConfigDict(extra="forbid")

    kind: AssetKind = Field(description="What to make: image, video or speech.")
    prompt: str = Field(
        min_length=1, max_length=MAX_PROMPT_CHARS, description="What it shows (for speech: the words to say)."
    )
    provider: str = Field(default="local", description="Who makes it; see `cutroom providers`.")
    model: str | None = Field(default=None, description="The provider's model; default: its default model.")
    aspect: Aspect = Aspect.landscape
    duration_s: float = Field(default=5.0, ge=1, le=30, description="Clip length in seconds.")
    camera_motion: CameraMotion = CameraMotion.push_in
    image: str | None = Field(
        default=None, description="Start a clip from: a file, an http(s) URL, or provider:job_id to extend."
    )
    end_image: str | None = Field(default=None, description="End a clip on: a file, URL or provider:job_id.")
    loop: bool = Field(default=False, description="A clip whose end flows back into its start.")
    operation: Operation | None = Field(default=None, description="Work on `source` instead of making anew.")
    source: str | None = Field(
        default=None, description="What the operation works on: provider:job_id, URL or file."
    )
    options: dict[str, OptionValue] = Field(
        default_factory=dict, description="The model's own settings; see `cutroom models --provider P`."
    )
    fps: int | None = Field(
        default=None, ge=1, le=240, description="Frame rate (or enhance_frame_rate's target)."
    )
    references: tuple[str, ...] = Field(default=(), description="Images a new image draws on.")
    style_references: tuple[str, ...] = Field(
        default=(), description="Images whose style a new image follows."
    )
    character_references: tuple[str, ...] = Field(default=(), description="Images of the character it shows.")
    voice: str | None = Field(default=None, description="Voice for speech, e.g. en-us.")
    headline: str = Field(
        default="", max_length=200, description="Text typeset on an image or revealed in a clip."
    )
    palette: tuple[str, ...] = DEFAULT_PALETTE

    @model_validator(mode="after")
    def _consistent(self) -> AssetRequest:
        if (self.operation is None) != (self.source is None):
            raise ValueError(
                "an operation and its source go together (e.g. operation upscale, source luma:JOB_ID)"
            )
        guides = self.references or self.style_references or self.character_references
        if guides and (self.kind is not AssetKind.image or self.operation is not None):
            raise ValueError("reference, style and character images guide a new image only")
        if (self.image or self.end_image or self.loop) and self.kind is not AssetKind.video:
            raise ValueError("a start image, end image or loop belongs to a video")
        return self

    def inputs(self) -> list[tuple[str, str]]:
        """Every input named, as (role, what the user gave)."""
        named = [("source", self.source), ("keyframe", self.image), ("last_frame", self.end_image)]
        named += [("reference", r) for r in self.references]
        named += [("style_reference", r) for r in self.style_references]
        named += [("character_reference", r) for r in self.character_references]
        return [(role, value) for role, value in named if value is not None]
