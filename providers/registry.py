"""Which provider does each capability: a catalogue as data, and the choice a brief's preferences make."""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from cutroom.settings import settings
from providers.base import Capability, ErrorKind, ProviderError
from providers.limits import Limits, Throttle
from providers.simulation import simulator_url


@dataclass(frozen=True)
class Entry:
    """One provider for one capability: how to build it and what it needs to run."""

    name: str
    capability: Capability
    factory: Callable[[], Any]
    key_env: str | None = None
    summary: str = ""

    def missing(self) -> str | None:
        """Why this provider cannot run here, or None when it can (a key, or the loopback simulator)."""
        if self.key_env and not os.environ.get(self.key_env) and not simulator_url():
            return f"set {self.key_env}"
        return None


def _lazy(module: str, cls: str) -> Callable[[], Any]:
    """A factory that imports its adapter only when used: vendor SDKs cost start-up time."""

    def build() -> Any:
        return getattr(importlib.import_module(f"providers.{module}"), cls)()

    return build


CATALOGUE: list[Entry] = [
    Entry("local", Capability.planner, _lazy("local.planner", "LocalPlanner"), summary="rule-based planner"),
    Entry(
        "local", Capability.image, _lazy("local.image", "LocalImage"), summary="brand-palette canvas (Pillow)"
    ),
    Entry(
        "local", Capability.video, _lazy("local.video", "LocalAnimatic"), summary="animatic from a keyframe"
    ),
    Entry(
        "local",
        Capability.speech,
        _lazy("local.speech", "LocalSpeech"),
        summary="espeak-ng with word timings",
    ),
    Entry(
        "local",
        Capability.judge,
        _lazy("local.judge", "LocalJudge"),
        summary="technical metrics of the media",
    ),
    Entry("luma", Capability.image, _lazy("luma", "LumaImage"), "LUMAAI_API_KEY", "Luma Photon images"),
    Entry("luma", Capability.video, _lazy("luma", "LumaVideo"), "LUMAAI_API_KEY", "Luma Ray video"),
    Entry(
        "runway",
        Capability.image,
        _lazy("runway", "RunwayImage"),
        "RUNWAYML_API_SECRET",
        "Runway gen4 images",
    ),
    Entry(
        "runway", Capability.video, _lazy("runway", "RunwayVideo"), "RUNWAYML_API_SECRET", "Runway gen4 video"
    ),
]

#: Per vendor account, shared by all its capabilities: the lowest tier's numbers from the vendors' tier tables.
#: Runway tier 1 runs 1–2 generations at once per model and has no request-rate limit; Luma publishes no numbers
#: (per-account concurrency + RPM, 429 beyond) — 4 at once and 60 submits a minute are our guess (u).
#: CUTROOM_PROVIDER_LIMITS='{"runway": {"concurrency": 5}}' overrides them.
DEFAULT_LIMITS: dict[str, Limits] = {
    "runway": Limits(concurrency=2),
    "luma": Limits(concurrency=4, per_minute=60),
}

#: Tried after a brief's preferences, in this order.
DEFAULT_ORDER: dict[Capability, tuple[str, ...]] = {cap: ("local",) for cap in Capability}


def register(entry: Entry) -> None:
    """Add a provider to the catalogue, or replace the one of the same name and capability (plugins)."""
    CATALOGUE[:] = [e for e in CATALOGUE if (e.name, e.capability) != (entry.name, entry.capability)] + [
        entry
    ]
    _instances.pop((entry.capability, entry.name), None)


def entries(capability: Capability) -> list[Entry]:
    return [e for e in CATALOGUE if e.capability is capability]


def known(capability: Capability) -> list[str]:
    return [e.name for e in entries(capability)]


@dataclass
class Choice:
    entry: Entry
    passed_over: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.entry.name


def unknown_preferences(preferences: dict[str, list[str]]) -> list[str]:
    """Problems with a brief's provider preferences, in words a marketer understands."""
    problems = []
    for capability, names in preferences.items():
        names_known = known(Capability(capability))
        for name in names:
            if name not in names_known:
                problems.append(
                    f"'providers.{capability}' names '{name}', which Cutroom does not know; "
                    f"known {capability} providers: {', '.join(names_known)}"
                )
    return problems


def choose(capability: Capability, preferences: list[str] | None = None) -> Choice:
    """The first preferred provider that can run here; the ones passed over say why."""
    order = list(dict.fromkeys([*(preferences or []), *DEFAULT_ORDER[capability]]))
    by_name = {e.name: e for e in entries(capability)}
    passed_over = []
    for name in order:
        entry = by_name.get(name)
        if entry is None:
            passed_over.append(f"{name}: unknown {capability.value} provider")
            continue
        why = entry.missing()
        if why is None:
            return Choice(entry, passed_over)
        passed_over.append(f"{name}: {why}")
    raise ProviderError(
        ErrorKind.not_configured, f"no {capability.value} provider can run: {'; '.join(passed_over)}"
    )


_instances: dict[tuple[Capability, str], Any] = {}
_throttles: dict[str, Throttle] = {}
_throttles_lock = threading.Lock()


def limits(name: str) -> Limits:
    """A provider's caps: its defaults, with whatever CUTROOM_PROVIDER_LIMITS says for it on top."""
    base = DEFAULT_LIMITS.get(name, Limits())
    override = settings().provider_limits.get(name, {})
    return Limits.model_validate({**base.model_dump(), **override})


def throttle(name: str) -> Throttle:
    """The process's one throttle per provider, so every story and task shares its caps."""
    with _throttles_lock:  # stories ask from worker threads: two throttles would double the caps
        if name not in _throttles:
            _throttles[name] = Throttle(limits(name))
        return _throttles[name]


def provider(capability: Capability, name: str) -> Any:
    """A ready provider instance; one per process, since providers hold clients and job tables."""
    key = (capability, name)
    if key not in _instances:
        entry = next((e for e in entries(capability) if e.name == name), None)
        if entry is None:
            raise ProviderError(ErrorKind.not_configured, f"unknown {capability.value} provider '{name}'")
        _instances[key] = entry.factory()
    return _instances[key]


def is_job(value: str) -> bool:
    """Whether text names an earlier generation as 'provider:job_id' (e.g. luma:4f2c…)."""
    provider, _, job = value.partition(":")
    return bool(job) and provider in {e.name for e in CATALOGUE}


def model_for(capability: Capability, name: str, model: str | None) -> str:
    """The model to ask for: the one named (checked against the provider's cards) or its default."""
    instance = provider(capability, name)
    if model is None:
        return getattr(instance, "model", "")
    cards = {m: c for m, c in model_cards(instance).items() if c.capability is capability}
    if model not in cards:
        known = ", ".join(cards) or "only its built-in one"
        raise ProviderError(
            ErrorKind.invalid_input, f"{name} has no {capability.value} model '{model}'; it has {known}"
        )
    return model


class Pick(BaseModel):
    name: str
    model: str = ""
    durations_s: tuple[float, ...] = ()


class Lineup(BaseModel):
    """The provider each capability uses for one campaign, and why others were passed over."""

    planner: Pick
    image: Pick
    video: Pick
    speech: Pick
    judge: Pick
    notes: list[str] = []


def model_cards(instance: Any) -> dict[str, Any]:
    """The MODELS table of the module an adapter comes from; local providers have none."""
    return getattr(importlib.import_module(type(instance).__module__), "MODELS", {})


def lineup(preferences: dict[str, list[str]]) -> Lineup:
    picks: dict[str, Pick] = {}
    notes: list[str] = []
    for capability in Capability:
        choice = choose(capability, preferences.get(capability.value))
        instance = provider(capability, choice.name)
        model = getattr(instance, "model", "")
        card = model_cards(instance).get(model)
        picks[capability.value] = Pick(
            name=choice.name, model=model, durations_s=card.durations_s if card else ()
        )
        notes += [f"{capability.value}: passed over {p}" for p in choice.passed_over]
    return Lineup(**picks, notes=notes)
