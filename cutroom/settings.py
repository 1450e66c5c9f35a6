"""Runtime settings from the environment (CUTROOM_*) or a .env file."""

from __future__ import annotations

import os

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CUTROOM_", env_file=".env", extra="ignore")

    out: str = Field(default="cutroom-out", description="Where campaigns are written (a folder).")
    local_workers: int = Field(
        default_factory=lambda: max(1, os.cpu_count() or 1),
        ge=1,
        description="How many local renders (images, clips, speech, scoring) run at once.",
    )
    story_concurrency: int = Field(default=4, ge=1, description="How many stories are worked on at once.")
    crossfade_s: float = Field(default=0.5, ge=0, le=2, description="Crossfade between clips in a reel.")
    end_card_s: float = Field(default=2.5, ge=0, le=10, description="How long the brand end card shows.")


def settings() -> Settings:
    return Settings()
