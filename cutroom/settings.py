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
    draft_renders: bool = Field(
        default=False,
        description="Encode everything Cutroom renders itself (reels, offline clips, templates, avatars) with x264's "
        "ultrafast preset: about a third of the CPU for files about twice as large. For previews and CI runs; "
        "reels meant for a channel keep it off.",
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
    story_pool: str | None = Field(
        default=None,
        description="A Prefect work pool whose workers make the stories: each story is its own run of the `story` "
        "deployment, which any worker of the pool takes. Unset: stories run inside the campaign's process.",
    )
    story_batch: int = Field(
        default=1,
        ge=1,
        le=1000,
        description="On a story pool, how many stories one run of the pool makes. Every run is a process of its "
        "own with seconds of start-up (bench P1: ≈ 2.6 CPU-s here), paid per story at 1; a batch's stories are "
        "made in its process as a campaign's own are (each still its own story run, CUTROOM_STORY_CONCURRENCY at "
        "once), so a campaign of thousands of stories wants tens or hundreds per run. A batch started again "
        "resumes every story it holds without paying twice.",
    )
    story_silence_s: int = Field(
        default=90,
        ge=40,
        le=3600,
        description="How long a story run a worker took may go without starting or sending a heartbeat (one every "
        "30 s) before it is taken for dead (its machine gone) and started again elsewhere: three missed beats by "
        "default; a run that needs longer to start on a slow machine needs more.",
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

    notify_url: SecretStr | None = Field(
        default=None,
        description="A webhook that gets a JSON POST when a campaign's review is waiting and when a campaign ends "
        "(event, campaign id, flow run id, what to do).",
    )
    notify_block: str | None = Field(
        default=None,
        description="A Prefect notification block, as type-slug/name (slack-webhook/team), told the same news.",
    )
    review_wait_h: float = Field(
        default=72,
        gt=0,
        description="How long a campaign waits for its review before it fails (its stories stay made and paid).",
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
        """A vendor key or other secret by its variable name: the environment, else the .env file, else the Prefect
        Secret block named after it when a Prefect server is set, so a team's workers on many machines take its
        keys from the server instead of each machine's environment."""
        value = os.environ.get(name) or _dotenv(ENV_FILE).get(name) or _secret_block(name)
        return SecretStr(value) if value else None


@cache
def _dotenv(path: str) -> dict[str, str | None]:
    return dotenv_values(path) if Path(path).is_file() else {}


def secret_block_name(variable: str) -> str:
    """The Prefect Secret block that holds a variable's value: OPENAI_API_KEY → openai-api-key."""
    return variable.lower().replace("_", "-")


@cache
def _secret_block(name: str) -> str | None:
    """The text of the variable's Secret block, read once per process and never logged. None without a Prefect
    API, without such a block, or when the API cannot be reached: as with no key, the vendor says what to set."""
    from cutroom.prefect_server import shared_server

    api = shared_server()
    block = secret_block_name(name)
    if not api or block not in _secret_block_names(api):
        return None
    import httpx
    from prefect.blocks.system import Secret

    try:
        value = Secret.load(block, _sync=True).get()
    except (httpx.HTTPError, ValueError):  # gone since the listing, or not a Secret
        return None
    return value if isinstance(value, str) else None


@cache
def _secret_block_names(api: str) -> frozenset[str]:
    """The names of the server's Secret blocks, listed once per process: a run asks for every vendor's key, and
    most have no block, so one listing spares a read per missing key. Empty when the API cannot be reached."""
    import httpx
    from prefect.client.orchestration import get_client

    names: set[str] = set()
    try:
        with get_client(sync_client=True) as client:
            while page := client.read_block_documents_by_type(
                "secret", offset=len(names), limit=200, include_secrets=False
            ):
                names.update(document.name for document in page)
                if len(page) < 200:
                    break
    except httpx.HTTPError:  # unreachable, or no Secret block type registered yet
        return frozenset()
    return frozenset(names)


def settings() -> Settings:
    return Settings()
