"""The campaign plan: typed stories, each a sequence of shots."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from cutroom.channels import Aspect, Channel
from cutroom.prd import Prd


class StoryType(StrEnum):
    social = "social"
    design = "design"
    video = "video"
    avatar = "avatar"
    email = "email"


class CameraMotion(StrEnum):
    static = "static"
    push_in = "push_in"
    pull_out = "pull_out"
    pan_left = "pan_left"
    pan_right = "pan_right"
    tilt_up = "tilt_up"


class Copy(BaseModel):
    headline: str
    body: str
    cta: str


class Shot(BaseModel):
    prompt: str
    duration_s: float = Field(gt=0, le=30)
    aspect: Aspect
    camera_motion: CameraMotion = CameraMotion.push_in
    continues_previous: bool = Field(
        default=False, description="Start from the previous shot's last frame, for visual continuity."
    )
    caption: str = ""
    hero: bool = Field(
        default=False,
        description="The shot a story leads with; made on the brief's hero engine, if it names one.",
    )


class Story(BaseModel):
    id: str
    title: str
    type: StoryType
    channel: Channel
    objective: str
    copy_: Copy = Field(alias="copy")
    voice_over: str = ""
    keyframe_prompt: str
    shots: list[Shot] = Field(default_factory=list)
    user_story: str = Field(default="", description="As <who>, I want <what>, so that <why>.")
    acceptance_criteria: list[str] = Field(
        default_factory=list,
        description="What the story's media must show or say; the vision judge scores each.",
    )

    model_config = {"populate_by_name": True}

    @property
    def duration_s(self) -> float:
        return sum(s.duration_s for s in self.shots)

    @property
    def moving(self) -> bool:
        """Whether this story becomes clips and a reel, or stays a still design."""
        return bool(self.shots)


class Plan(BaseModel):
    campaign_id: str
    campaign: str
    stories: list[Story]
    prd: Prd | None = Field(default=None, description="What the campaign is for and how it will be judged.")

    def story(self, story_id: str) -> Story:
        return next(s for s in self.stories if s.id == story_id)
