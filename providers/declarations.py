"""Vendor declarations: everything Cutroom knows about a vendor, as data, in one place per vendor.

A declaration is a TOML file beside its adapter (providers/<vendor>.toml): the vendor's name, key variable(s),
base URL, simulator mount, default account limits, job-id shape and its models as cards with prices and
options. Plugins add theirs through the `cutroom.providers` entry-point group (an entry names a Vendor object or
a TOML file). A user changes prices and limits without editing code in the file CUTROOM_CARDS names, written in
the declarations' own shape and merged over them (README, "Adding a vendor").

Nothing here imports an adapter or a vendor SDK: `cutroom providers`, `cutroom models` and every check before a
paid call read declarations only.
"""

from __future__ import annotations

import re
import tomllib
from functools import cache
from importlib import resources
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cutroom.capabilities import Capability
from cutroom.settings import settings
from providers.cards import ModelCard, OptionSpec
from providers.errors import ErrorKind, ProviderError
from providers.limits import Limits
from providers.simulation import simulator_url

PLUGIN_GROUP = "cutroom.providers"
#: A job id any vendor could hand out; a declaration narrows it. It must never carry a path or a query.
JOB_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"


class Simulator(BaseModel, frozen=True):
    """Where the loopback simulator mounts the vendor, and a key of the vendor's shape it accepts."""

    model_config = ConfigDict(extra="forbid")

    prefix: str
    key: str


class Api(BaseModel, frozen=True):
    """A second API of a vendor that serves some of its models only (Luma Agents beside Dream Machine): what
    differs there from the vendor's main one. A card names it in `api`."""

    model_config = ConfigDict(extra="forbid")

    title: str
    keys: tuple[str, ...]
    base_url: str
    base_url_env: str | None = None
    simulator: Simulator | None = None
    links_only: bool = False


class Polling(BaseModel, frozen=True):
    model_config = ConfigDict(extra="forbid")

    first_share: float = Field(
        default=0.8,
        gt=0,
        description="The first look, as a share of the model's expected latency: early for a vendor that reports "
        "progress (the reading predicts the end), late for one that does not.",
    )
    max_interval_s: float = Field(default=15.0, gt=0, description="The longest wait between looks.")
    timeout_s: float | None = Field(
        default=None,
        description="When to give up on a job; default 20x its expected latency, at least 10 min.",
    )


class Vendor(BaseModel, frozen=True):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    summary: str = ""
    docs: str = ""
    keys: tuple[str, ...] = Field(
        default=(), description="Environment variables the vendor's key is read from."
    )
    base_url: str = ""
    base_url_env: str | None = None
    simulator: Simulator | None = None
    model_env: str | None = Field(
        default=None,
        description="A variable naming the language model to ask, for endpoints whose models no card knows "
        "(Ollama, vLLM, LM Studio); a model the cards do not know is priced at nothing.",
    )
    job_id: str = Field(
        default=JOB_ID, description="A regular expression every job id of the vendor matches."
    )
    timeout_s: float = Field(default=60.0, gt=0, description="How long one request to the vendor may take.")
    links_only: bool = Field(
        default=False,
        description="Takes input media only as public links (it fetches them), never as uploads.",
    )
    billable: bool = True
    cpu_bound: bool = Field(
        default=False, description="Runs on this machine's CPUs: capped by local workers."
    )
    adapters: dict[Capability, str] = Field(description="Capability -> 'module:Class' of its adapter.")
    apis: dict[str, Api] = Field(
        default_factory=dict, description="Its other APIs by name, for the cards that name one in `api`."
    )
    limits: Limits = Field(default_factory=Limits)
    polling: Polling = Field(default_factory=Polling)
    models: tuple[ModelCard, ...] = ()

    @model_validator(mode="after")
    def _one_default_per_capability(self) -> Vendor:
        for capability in self.adapters:
            defaults = [c.model for c in self.cards(capability) if c.default]
            if len(defaults) > 1:
                raise ValueError(f"{capability.value} has more than one default model: {', '.join(defaults)}")
        return self

    @model_validator(mode="after")
    def _apis_declared(self) -> Vendor:
        unknown = sorted({c.api for c in self.models if c.api and c.api not in self.apis})
        if unknown:
            raise ValueError(f"models name undeclared apis: {', '.join(unknown)}")
        return self

    def serving(self, model: str | None) -> Vendor:
        """The vendor as the API serving a model reaches it: that API's key, base URL, simulator mount and input
        rules; itself for a model of its main API (or none, or one it does not know)."""
        card = next((c for c in self.models if c.model == model), None)
        if card is None or not card.api:
            return self
        api = self.apis[card.api]
        return self.model_copy(update={field: getattr(api, field) for field in Api.model_fields})

    def cards(self, capability: Capability) -> list[ModelCard]:
        return [card for card in self.models if card.capability is capability]

    def card(self, model: str, capability: Capability | None = None) -> ModelCard:
        """The card of a model (of a capability), or invalid_input naming the ones there are."""
        for card in self.models:
            if card.model == model and capability in (None, card.capability):
                return card
        what = f"{capability.value} " if capability else ""
        known = ", ".join(c.model for c in self.models if c.capability is capability and not c.retired)
        raise ProviderError(
            ErrorKind.invalid_input,
            f"{self.name} has no {what}model {_short(model)}; it has {known or 'none'}",
            provider=self.name,
        )

    def default_model(self, capability: Capability) -> str:
        cards = [c for c in self.cards(capability) if not c.retired]
        chosen = next((c for c in cards if c.default), cards[0] if cards else None)
        return chosen.model if chosen else ""

    def missing(self) -> str | None:
        """Why the vendor cannot run here, or None when it can (its keys, or the loopback simulator)."""
        if self.simulator is not None and simulator_url():
            return None
        absent = [key for key in self.keys if all(settings().secret(k) is None for k in key.split("|"))]
        return f"set {' and '.join(a.replace('|', ' or ') for a in absent)}" if absent else None

    def checks_job_id(self, job_id: str) -> str:
        """The job id if it has the vendor's shape; refused before it can reach a URL."""
        if not re.fullmatch(self.job_id, job_id):
            raise ProviderError(
                ErrorKind.invalid_input, f"{_short(job_id)} is not a {self.name} job id", provider=self.name
            )
        return job_id


def _short(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:39] + "…")


class DeclarationError(ValueError):
    """A declaration (built-in, plugin or CUTROOM_CARDS) that cannot be read."""


def parse(data: dict[str, Any], source: str) -> Vendor:
    """A vendor from a declaration's TOML data: `[options.NAME]` tables are shared by the models that list them."""
    data = dict(data)
    options = {name: OptionSpec.model_validate(o) for name, o in data.pop("options", {}).items()}
    models = []
    for model in data.get("models", []):
        model = dict(model)
        names = model.pop("options", [])
        unknown = [n for n in names if n not in options]
        if unknown:
            raise DeclarationError(f"{source}: model {model.get('model')} names unknown options {unknown}")
        chosen = {n: _sized(options[n], model.get("sizes", ())) for n in names}
        # A language model serves several capabilities (planner, judge, refiner) from one card.
        for capability in model.pop("capabilities", None) or [model.get("capability")]:
            models.append(
                {**model, "capability": capability, "provider": data.get("name"), "options": chosen}
            )
    try:
        return Vendor.model_validate({**data, "models": models})
    except ValidationError as exc:
        raise DeclarationError(f"{source}: {exc}") from None


def _sized(option: OptionSpec, sizes: list[str] | tuple[str, ...]) -> OptionSpec:
    return option.model_copy(update={"choices": tuple(sizes)}) if option.sized else option


def _builtin() -> list[tuple[str, dict[str, Any]]]:
    folder = resources.files("providers")
    return [
        (f"providers/{entry.name}", tomllib.loads(entry.read_text(encoding="utf-8")))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".toml")
    ]


def _plugins() -> list[tuple[str, dict[str, Any] | Vendor]]:
    found: list[tuple[str, dict[str, Any] | Vendor]] = []
    for entry in entry_points(group=PLUGIN_GROUP):
        loaded = entry.load()
        if isinstance(loaded, Vendor):
            found.append((f"plugin {entry.name}", loaded))
        else:  # a path to a TOML declaration
            found.append(
                (f"plugin {entry.name}", tomllib.loads(Path(str(loaded)).read_text(encoding="utf-8")))
            )
    return found


def _merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A declaration with a user's changes: tables merge, models by name, anything else is replaced — a price
    too, whole: a user who states a price states what they pay, verified."""
    merged = dict(base)
    for key, value in changes.items():
        if key == "price":
            merged[key] = value
        elif key == "models":
            by_name = {m["model"]: m for m in merged.get("models", [])}
            for change in value:
                name = change.get("model")
                by_name[name] = _merged(by_name[name], change) if name in by_name else change
            merged["models"] = list(by_name.values())
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


@cache
def _load(cards: Path | None) -> dict[str, Vendor]:
    changes: dict[str, Any] = {}
    if cards is not None:
        try:
            changes = tomllib.loads(cards.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise DeclarationError(f"CUTROOM_CARDS {cards}: {exc}") from None
    vendors: dict[str, Vendor] = {}
    for source, data in [*_builtin(), *_plugins()]:
        if isinstance(data, Vendor):  # its models' options are resolved already
            try:
                vendor = Vendor.model_validate(_merged(data.model_dump(), changes.get(data.name, {})))
            except ValidationError as exc:
                raise DeclarationError(f"{source}: {exc}") from None
        else:
            vendor = parse(_merged(data, changes.get(data.get("name", ""), {})), source)
        vendors[vendor.name] = vendor
    unknown = sorted(set(changes) - set(vendors))
    if unknown:
        raise DeclarationError(f"CUTROOM_CARDS {cards} changes unknown vendors: {', '.join(unknown)}")
    return vendors


#: Vendors declared in code at run time (`register`), over the built-in and plugin ones.
_registered: dict[str, Vendor] = {}


def register(vendor: Vendor) -> None:
    _registered[vendor.name] = vendor


def unregister(name: str) -> None:
    _registered.pop(name, None)


def vendors() -> dict[str, Vendor]:
    """Every declared vendor by name: built-in, then plugins (a plugin may replace a built-in one), then those
    registered in code."""
    return {**_load(settings().cards), **_registered}


def vendor(name: str) -> Vendor:
    try:
        return vendors()[name]
    except KeyError:
        raise ProviderError(
            ErrorKind.not_configured,
            f"unknown provider {_short(name)}; known: {', '.join(vendors())}",
        ) from None
