"""Runtime settings from the environment (CUTROOM_*) or a .env file."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from dotenv import dotenv_values
from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_FILE = ".env"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CUTROOM_", env_file=ENV_FILE, extra="ignore")

    out: str = Field(
        default="cutroom-out",
        validation_alias=AliasChoices("CUTROOM_STORAGE", "CUTROOM_OUT"),
        description="Where campaigns are written: a folder, or s3://bucket/prefix (endpoint from AWS_*).",
    )
    local_workers: int = Field(
        default_factory=lambda: max(1, os.cpu_count() or 1),
        ge=1,
        description="How many local renders (images, clips, speech, scoring) run at once.",
    )
    story_concurrency: int = Field(
        default=16,
        ge=1,
        description="How many stories are worked on at once: enough to keep every vendor's slots busy while "
        "earlier stories wait on theirs.",
    )
    crossfade_s: float = Field(default=0.5, ge=0, le=2, description="Crossfade between clips in a reel.")
    end_card_s: float = Field(default=2.5, ge=0, le=10, description="How long the brand end card shows.")
    link_expiry_s: int = Field(
        default=7 * 24 * 3600,
        ge=60,
        le=7 * 24 * 3600,
        description="How long the presigned links in a report on S3 stay valid (S3 allows seven days at most).",
    )
    provider_limits: dict[str, dict[str, float | None]] = Field(
        default_factory=dict,
        description='Per-provider caps over the defaults, e.g. {"runway": {"concurrency": 5, "per_minute": 30}}.',
    )
    global_limits: bool | None = Field(
        default=None,
        description="Also cap each provider across processes and workers with Prefect global concurrency limits. "
        "Default: on with a Prefect server (PREFECT_API_URL), off with the embedded one, which keeps slot leases "
        "in its memory and never expires them, so a killed run would hold its slots for good.",
    )

    llm_max_tokens: int = Field(
        default=8000,
        ge=256,
        le=64000,
        description="The most tokens a language model may write in one answer (a plan of many stories needs more).",
    )
    judge_vision_weight: float = Field(
        default=0.6,
        ge=0,
        le=1,
        description="How much a vision judge's verdict (on brief, on brand) weighs in a score beside the technical "
        "judge's (well made): 0.6 means 60 % on brief, 40 % well made.",
    )

    cards: Path | None = Field(
        default=None,
        description="A TOML file of model-card and limit changes over the built-in vendor declarations "
        "(prices, limits), in the declarations' own shape: see README, 'Adding a vendor'.",
    )
    simulator_url: str | None = Field(
        default=None,
        description="The loopback vendor simulator's address: every vendor adapter then talks to it with a dummy "
        "key instead of to its vendor (`cutroom simulate`).",
    )
    callback_url: str | None = Field(
        default=None, description="A public URL where vendors that call back (Luma) post news of their jobs."
    )
    callback_listen: str | None = Field(
        default=None,
        description="host:port the callback receiver binds; default all interfaces, the URL's port.",
    )

    allow_private_urls: bool = Field(
        default=False,
        description="Let Cutroom fetch URLs on loopback, private, link-local or metadata addresses (the simulator "
        "and tests need it; a deployment does not).",
    )
    allowed_roots: list[Path] = Field(
        default_factory=list,
        description="Folders besides a brief's own that its files (logo, style reference) may come from.",
    )
    max_fetch_mb: float = Field(
        default=50.0, gt=0, le=2048, description="The largest remote input Cutroom fetches."
    )

    def secret(self, name: str) -> SecretStr | None:
        """A vendor key or other secret by its variable name: the environment, else the .env file."""
        value = os.environ.get(name) or _dotenv(ENV_FILE).get(name)
        return SecretStr(value) if value else None


@cache
def _dotenv(path: str) -> dict[str, str | None]:
    return dotenv_values(path) if Path(path).is_file() else {}


def settings() -> Settings:
    return Settings()
