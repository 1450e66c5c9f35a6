"""Model cards: what each model can make, what it costs and which settings it takes, as data.

A card comes from its vendor's declaration (providers/<vendor>.toml); the registry, budgets, `check()`, the poll
schedule and the CLI all read it. `check()` refuses what the model cannot make before any request is sent.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from cutroom.assets import AssetSpec, Continuity, Operation, OptionValue
from cutroom.capabilities import Capability
from providers.errors import ErrorKind, ProviderError

#: Characters of a bad value an error message quotes.
QUOTED = 40


def quoted(value: object) -> str:
    text = repr(value)
    return text if len(text) <= QUOTED else text[: QUOTED - 1] + "…"


class OptionSpec(BaseModel, frozen=True):
    """One of a model's own settings, as its vendor names it; the descriptions double as CLI help."""

    model_config = ConfigDict(extra="forbid")

    description: str
    type: Literal["str", "int", "float", "bool"] = "str"
    choices: tuple[str | int | float, ...] = ()
    sized: bool = Field(
        default=False, description="The choices are each model's own `sizes` (a ratio or resolution name)."
    )
    ge: float | None = None
    le: float | None = None
    max_length: int | None = None
    default: OptionValue | None = None

    def annotation(self) -> Any:
        if self.choices:
            return Literal[self.choices]  # type: ignore[valid-type]
        return {"str": str, "int": int, "float": float, "bool": bool}[self.type]

    def describe(self) -> str:
        """The option's values in a few words, for `cutroom models`."""
        if self.choices:
            return "|".join(map(str, self.choices))
        if self.ge is not None or self.le is not None:
            low = "" if self.ge is None else f"{self.ge:g}"
            high = "" if self.le is None else f"{self.le:g}"
            return f"{self.type} {low}..{high}"
        return self.type


class Price(BaseModel, frozen=True):
    """What one output costs: a rate per unit, optionally chosen by one option's value."""

    model_config = ConfigDict(extra="forbid")

    unit: Literal["image", "second", "megapixel", "1k_chars", "call"] = "image"
    usd: float = Field(default=0.0, ge=0, description="USD per unit; with `by`, the dearest case.")
    by: str | None = Field(default=None, description="The option whose value picks the rate from `table`.")
    table: dict[str, float] = Field(default_factory=dict)
    image_usd: float | None = Field(
        default=None,
        ge=0,
        description="USD per still of a model billed by the second: an output with no length is a still.",
    )
    unverified: bool = Field(default=False, description="Not confirmed in the vendor's own price list.")
    source: str = ""

    def rate(self, options: dict[str, OptionValue]) -> float:
        if self.by is not None and str(options.get(self.by)) in self.table:
            return self.table[str(options[self.by])]
        return self.usd

    def of(self, spec: AssetSpec, options: dict[str, OptionValue] | None = None) -> float:
        """The price of a spec; `options` are its settings with the card's defaults (else the spec's own)."""
        if self.unit == "second" and not spec.duration_s and self.image_usd is not None:
            return self.image_usd
        units = {
            "image": 1.0,
            "call": 1.0,
            "second": spec.duration_s or 0.0,
            "megapixel": (spec.width or 1024) * (spec.height or 1024) / 1e6,
            "1k_chars": len(spec.prompt) / 1000,
        }[self.unit]
        return round(units * self.rate(spec.options if options is None else options), 4)

    def describe(self) -> str:
        per = {"1k_chars": "1k chars"}.get(self.unit, self.unit)
        rate = f"${self.usd:g}/{per}" if self.usd else "free"
        if self.by:
            rate = f"≤ {rate} by {self.by}"
        if self.image_usd is not None:
            rate += f", ${self.image_usd:g}/still"
        return rate + (" (u)" if self.unverified else "")


class TokenPrice(BaseModel, frozen=True):
    """What a language model's call costs: dollars per million tokens read and written."""

    model_config = ConfigDict(extra="forbid")

    input_per_m: float = Field(ge=0)
    output_per_m: float = Field(ge=0)
    unverified: bool = Field(default=False, description="Not confirmed in the vendor's own price list.")
    source: str = ""

    def of(self, input_tokens: int, output_tokens: int) -> float:
        return round((input_tokens * self.input_per_m + output_tokens * self.output_per_m) / 1e6, 6)

    def describe(self) -> str:
        rate = f"${self.input_per_m:g} in / ${self.output_per_m:g} out per 1M tokens"
        return rate + (" (u)" if self.unverified else "")


class ModelCard(BaseModel, frozen=True):
    model_config = ConfigDict(extra="forbid")

    provider: str
    model: str
    vendor_id: str | None = Field(
        default=None, description="The vendor's own id for the model when not its name (a Leonardo UUID)."
    )
    capability: Capability
    summary: str = ""
    default: bool = Field(
        default=False, description="The vendor's model for its capability when none is named."
    )
    retired: str | None = Field(
        default=None, description="Why the model can no longer be used and what replaces it."
    )
    durations_s: tuple[float, ...] = Field(
        default=(), description="Clip lengths the model accepts; empty: any."
    )
    aspects: tuple[str, ...] = Field(default=(), description="Aspect ratios the model accepts, like '16:9'.")
    sizes: tuple[str, ...] = Field(
        default=(), description="Output sizes the model makes, as its vendor names them (1024x1536, 720p …)."
    )
    frame_rates: tuple[int, ...] = Field(
        default=(), description="Frame rates the model can make; empty: any."
    )
    operations: tuple[Operation, ...] = Field(
        default=(), description="Edits of a `source` input the model does (spec.operation)."
    )
    makes_new: bool = Field(default=True, description="False for a model that only edits a source.")
    inputs: tuple[str, ...] = Field(
        default=(), description="Input roles the model takes when making anew (keyframe, reference …)."
    )
    needs: tuple[str, ...] = Field(
        default=(), description="Input roles it cannot make anything without ('a|b': either one)."
    )
    chains: bool = Field(
        default=False,
        description="Continues a generation of its own vendor and API from the job itself (extend), not from a "
        "frame.",
    )
    api: str = Field(
        default="",
        description="The vendor's API that serves it, when not its main one (declared in the vendor's `apis`): "
        "its key, base URL and input rules are that API's, and it continues only that API's generations.",
    )
    expected_latency_s: float = Field(
        default=0.0, ge=0, description="Typical time from submit to done; the first poll aims here."
    )
    latency_unverified: bool = False
    min_poll_interval_s: float = Field(default=0.0, ge=0)
    price: Price = Field(default_factory=Price)
    tokens: TokenPrice | None = Field(default=None, description="A language model's price per token.")
    vision: bool = Field(default=False, description="A language model that reads images as well as text.")
    options: dict[str, OptionSpec] = Field(default_factory=dict)

    @cached_property
    def options_model(self) -> type[BaseModel]:
        """A pydantic model of the card's options: unknown names and bad values are refused."""
        fields: dict[str, Any] = {
            name: (
                option.annotation() | None,
                Field(
                    default=option.default,
                    description=option.description,
                    ge=option.ge,
                    le=option.le,
                    max_length=option.max_length,
                ),
            )  # fmt: skip
            for name, option in self.options.items()
        }
        name = "".join(
            part.capitalize() for part in f"{self.provider} {self.model}".replace("-", " ").split()
        )
        return create_model(f"{name}Options", __config__=ConfigDict(extra="forbid", strict=False), **fields)

    def settings(self, spec: AssetSpec) -> dict[str, OptionValue]:
        """The spec's options with the card's defaults filled in (what an adapter sends)."""
        return self.options_model.model_validate(spec.options).model_dump(exclude_none=True)

    def price_of(self, spec: AssetSpec) -> float:
        """What the spec costs on this model, an option's default picking the rate when the spec names none."""
        try:
            return self.price.of(spec, self.settings(spec))
        except ValidationError:  # options check() refuses: priced at the spec's own, for the message only
            return self.price.of(spec)

    def chained_from(self, spec: AssetSpec) -> str | None:
        """The job id of the generation a spec continues, when this model extends it directly: one its vendor
        made on this model's API (another API's id means nothing here). A generation whose model the input does
        not say (a user's `luma:<id>`) is taken to be of this API: the vendor refuses an id it does not know."""
        ours = f"{self.provider}:"
        if self.chains:
            for ref in spec.inputs:
                if not (ref.continues and ref.continues.startswith(ours)):
                    continue
                if ref.continues_model is None or self.extends(_card_of(self.provider, ref.continues_model)):
                    return ref.continues.removeprefix(ours)
        return None

    def extends(self, earlier: ModelCard | None) -> bool:
        """Whether this model continues a generation of `earlier` from the job itself: only a generation of its
        own vendor and API."""
        return (
            self.chains
            and earlier is not None
            and (earlier.provider, earlier.api) == (self.provider, self.api)
        )

    def continuity(self, spec: AssetSpec) -> Continuity | None:
        """How a clip that continues another is joined to it on this model (None: it continues nothing)."""
        if not any(ref.continues for ref in spec.inputs):
            return None
        return Continuity.chained if self.chained_from(spec) else Continuity.last_frame

    def check(self, spec: AssetSpec) -> None:
        """Refuse a spec this model cannot make, before any money is spent: every problem named at once."""
        if self.retired:
            raise ProviderError(
                ErrorKind.invalid_input, f"{self.model}: {self.retired}", provider=self.provider
            )
        problems = []
        if spec.kind.value != self.capability.value:
            problems.append(f"a {spec.kind.value} (it makes {self.capability.value})")
        if self.durations_s and spec.duration_s is not None and spec.duration_s not in self.durations_s:
            allowed = ", ".join(f"{d:g}" for d in self.durations_s)
            problems.append(f"duration {spec.duration_s:g}s (allowed: {allowed})")
        if self.aspects and spec.aspect is not None and spec.aspect.value not in self.aspects:
            problems.append(f"aspect {spec.aspect.value} (allowed: {', '.join(self.aspects)})")
        if self.frame_rates and spec.fps is not None and spec.fps not in self.frame_rates:
            problems.append(f"{spec.fps} fps (allowed: {', '.join(map(str, self.frame_rates))})")
        problems += self._input_problems(spec)
        problems += self._option_problems(spec)
        if problems:
            raise ProviderError(
                ErrorKind.invalid_input,
                f"{self.model} cannot make {'; '.join(problems)}",
                provider=self.provider,
            )

    def _input_problems(self, spec: AssetSpec) -> list[str]:
        roles = [ref.role for ref in spec.inputs]
        if spec.operation is not None:
            if spec.operation not in self.operations:
                offered = ", ".join(self.operations) or "none"
                return [f"operation {spec.operation.value} (it does: {offered})"]
            if roles.count("source") != 1:
                return [f"{spec.operation.value} without exactly one input with role source (got {roles})"]
            return []
        if not self.makes_new:
            return [f"anything new: it only edits a source (operation {', '.join(self.operations)})"]
        problems = [f"from a {role} input (it takes: {', '.join(self.inputs) or 'none'})"
                    for role in dict.fromkeys(roles) if role not in self.inputs]  # fmt: skip
        for need in self.needs:
            if not any(role in roles for role in need.split("|")):
                problems.append(f"anything without a {need.replace('|', ' or ')} input")
        return problems

    def _option_problems(self, spec: AssetSpec) -> list[str]:
        try:
            self.options_model.model_validate(spec.options)
        except ValidationError as exc:
            return [_option_problem(error, self) for error in exc.errors()]
        return []


def _card_of(provider: str, model: str) -> ModelCard | None:
    """A model's card from its vendor's declaration; None when the vendor does not declare it."""
    from providers import declarations  # imported here: declarations are made of cards

    try:
        return declarations.vendor(provider).card(model)
    except ProviderError:
        return None


def _option_problem(error: Any, card: ModelCard) -> str:
    name = str(error["loc"][0]) if error["loc"] else "options"
    value = quoted(error.get("input"))
    if error["type"] == "extra_forbidden":
        known = ", ".join(card.options) or "none"
        return f"option {name} (its options: {known})"
    option = card.options.get(name)
    allowed = option.describe() if option else ""
    return f"option {name}={value} (allowed: {allowed})"
