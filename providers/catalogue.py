"""Model cards: what each vendor model can do and what it costs, as data the adapters and CLI share."""

from __future__ import annotations

from pydantic import BaseModel, Field

from cutroom.assets import AssetSpec, Operation
from providers.base import Capability, ErrorKind, ProviderError


class ModelCard(BaseModel, frozen=True):
    provider: str
    model: str
    capability: Capability
    summary: str = ""
    durations_s: tuple[float, ...] = Field(
        default=(), description="Clip lengths the model accepts; empty: any."
    )
    aspects: tuple[str, ...] = Field(default=(), description="Aspect ratios the model accepts, like '16:9'.")
    resolutions: tuple[str, ...] = Field(
        default=(),
        description="Output sizes the model takes as spec.resolution; empty: none can be asked for.",
    )
    frame_rates: tuple[int, ...] = Field(
        default=(), description="Frame rates the model can make; empty: any."
    )
    operations: tuple[Operation, ...] = Field(
        default=(),
        description="Edits of a source the model does (spec.operation); empty: it only makes anew.",
    )
    expected_latency_s: float = Field(
        description="Typical time from submit to done; the first poll aims here."
    )
    min_poll_interval_s: float = 0.0
    usd_per_second: float = 0.0
    usd_per_image: float = 0.0

    def price(self, spec: AssetSpec) -> float:
        if self.capability is Capability.video:
            return round(self.usd_per_second * (spec.duration_s or 0.0), 4)
        return self.usd_per_image

    def check(self, spec: AssetSpec) -> None:
        """Refuse a spec this model cannot make, before any money is spent."""
        problems = []
        if self.durations_s and spec.duration_s is not None and spec.duration_s not in self.durations_s:
            allowed = ", ".join(f"{d:g}" for d in self.durations_s)
            problems.append(f"duration {spec.duration_s:g}s (allowed: {allowed})")
        if self.aspects and spec.aspect is not None and spec.aspect.value not in self.aspects:
            problems.append(f"aspect {spec.aspect.value} (allowed: {', '.join(self.aspects)})")
        if spec.resolution is not None and spec.resolution not in self.resolutions:
            problems.append(
                f"resolution {spec.resolution} (allowed: {', '.join(self.resolutions) or 'none'})"
            )
        if self.frame_rates and spec.fps is not None and spec.fps not in self.frame_rates:
            allowed = ", ".join(map(str, self.frame_rates))
            problems.append(f"{spec.fps} fps (allowed: {allowed})")
        if problems:
            raise ProviderError(
                ErrorKind.invalid_input,
                f"{self.model} cannot make {'; '.join(problems)}",
                provider=self.provider,
            )
