"""The provider seam: one narrow protocol every vendor adapter and local provider speaks."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from cutroom.assets import AssetSpec, Score, WordTiming
from cutroom.brief import Brand, Brief
from cutroom.capabilities import Capability
from cutroom.plan import Plan
from providers.callbacks import CallbackNews
from providers.errors import ErrorKind

__all__ = [
    "Capability",
    "CallbackWoken",
    "ErrorKind",
    "Generator",
    "JobRef",
    "JobState",
    "JobStatus",
    "Judge",
    "Output",
    "Planner",
    "Refiner",
]


class JobState(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class JobRef(BaseModel):
    provider: str
    job_id: str
    spec_key: str
    durable: bool = Field(
        default=True, description="False for in-process jobs: nothing to re-attach to or chain from."
    )
    submitted_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    handle: dict[str, str] = Field(
        default_factory=dict,
        description="What the vendor needs besides the id to find the job again (BFL's polling URL); journaled "
        "with the id, so a process that did not submit the job can re-attach to it.",
    )
    spec: AssetSpec | None = Field(
        default=None,
        description="What was asked, for a job taken up again by a process that did not submit it.",
    )


class JobStatus(BaseModel):
    state: JobState
    progress: float | None = None
    error: str | None = None
    error_kind: ErrorKind | None = Field(
        default=None, description="Why a FAILED job failed, when the vendor says (moderation vs transient)."
    )


class Output(BaseModel):
    """Media bytes fetched from a finished job, with what we know about them."""

    data: bytes
    mime: str
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    words: list[WordTiming] = Field(default_factory=list)
    cost_usd: float = 0.0
    job_id: str | None = None
    source_url: str | None = Field(default=None, description="The provider's own link to the output.")


@runtime_checkable
class Generator(Protocol):
    """An image, video or speech provider."""

    name: str
    capability: Capability

    def estimate(self, spec: AssetSpec) -> float: ...
    def submit(self, spec: AssetSpec) -> JobRef: ...
    def poll(self, job: JobRef) -> JobStatus: ...
    def fetch(self, job: JobRef) -> Output: ...


class Planner(Protocol):
    """Plans a campaign; `model` is the language model to ask, where the planner is one."""

    name: str

    def plan(self, brief: Brief, model: str | None = None) -> Plan: ...


class Judge(Protocol):
    """Scores media against its brand and, where the judge can see them, the story's acceptance criteria."""

    name: str

    def score(
        self,
        media: Path,
        spec: AssetSpec,
        brand: Brand,
        criteria: tuple[str, ...] = (),
        model: str | None = None,
    ) -> Score: ...

    def call_usd(self, model: str | None = None) -> float:
        """What one score typically costs, for a story's estimate."""
        ...


class Refiner(Protocol):
    """Rewrites prompts; never into one of the brand's `avoid` words."""

    name: str

    def refine(
        self, prompt: str, score: Score, target: float, avoid: tuple[str, ...] = (), model: str | None = None
    ) -> str: ...

    def call_usd(self, model: str | None = None) -> float:
        """What one rewrite typically costs, for a story's estimate."""
        ...

    def rephrase_refused(
        self, prompt: str, reason: str, avoid: tuple[str, ...] = (), model: str | None = None
    ) -> str:
        """A prompt a vendor refused (moderation), rephrased once so that it may pass."""
        ...


@runtime_checkable
class CallbackWoken(Protocol):
    """A generator whose vendor posts news of its jobs to a URL (providers.callbacks)."""

    name: str

    @property
    def callback_url(self) -> str | None:
        """Where the vendor posts; None when callbacks are not configured."""
        ...

    def callback_news(self, body: Any) -> CallbackNews | None:
        """A posted body's news, or None when it is not this vendor's."""
        ...


@runtime_checkable
class KnowsTalkingPhotos(Protocol):
    """An avatar provider whose account lists its talking photos (HeyGen), so a script naming one it lacks is
    refused by its line before anything is paid for."""

    name: str

    def talking_photos(self) -> frozenset[str]:
        """The ids of the talking photos the account holds."""
        ...
