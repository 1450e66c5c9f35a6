"""Which provider does each capability: the declared vendors, the choice a brief's preferences make, and the one
adapter instance and throttle per vendor of a process."""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field
from typing import Any

from cutroom.assets import AssetSpec
from cutroom.boundary import quote
from cutroom.brief import Brief
from cutroom.capabilities import Capability
from cutroom.lineup import Lineup, Pick
from cutroom.settings import settings
from providers import declarations
from providers.cards import ModelCard
from providers.declarations import Vendor
from providers.errors import ErrorKind, ProviderError
from providers.inputs import check_local_inputs
from providers.limits import Limits, Throttle

#: Tried after a brief's preferences, in this order: the offline providers do every job.
FALLBACK = ("local",)


def offering(capability: Capability) -> list[Vendor]:
    """Every vendor with an adapter for the capability, in declaration order."""
    return [v for v in declarations.vendors().values() if capability in v.adapters]


def known(capability: Capability) -> list[str]:
    return [v.name for v in offering(capability)]


def named(entry: str) -> tuple[str, str | None]:
    """A preference entry's provider and model: `luma` → (luma, None), `runware:klingai:5@3` → (runware, …)."""
    name, _, model = entry.partition(":")
    return name, model or None


def unknown_preferences(brief: Brief) -> list[str]:
    """Problems with a brief's provider preferences, in words a marketer understands."""
    named_in = {f"providers.{c}": entries for c, entries in brief.preferences().items()}
    if brief.hero_engines:
        named_in = {
            **{k: v for k, v in named_in.items() if k != "providers.video"},
            "providers.video.default": brief.preferences()[Capability.video.value],
            "providers.video.hero": brief.preferences(hero=True)[Capability.video.value],
        }
    problems = []
    for where, entries in named_in.items():
        capability = Capability(where.split(".")[1])
        names_known = known(capability)
        for entry in entries:
            name, model = named(entry)
            if (retired := retirement(capability, name, model)) is not None:
                problems.append(f"'{where}' names {quote(entry, 60)}: {retired}")
            elif name not in names_known:
                problems.append(
                    f"'{where}' names {quote(name, 40)}, which Cutroom does not know; "
                    f"known {capability.value} providers: {', '.join(names_known)}"
                )
            elif model is not None:
                try:
                    model_for(capability, name, model)
                except ProviderError as exc:
                    problems.append(f"'{where}' names {quote(entry, 60)}: {exc.detail}")
    return problems


@dataclass
class Choice:
    vendor: Vendor
    model: str | None = None
    passed_over: list[str] = field(default_factory=list)
    fallbacks: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.vendor.name


def choose(capability: Capability, preferences: list[str] | None = None) -> Choice:
    """The first preferred provider (and model, where one is named) that can run here; the ones passed over say
    why; the ready ones after it are where a run moves when the chosen one fails it (a refused key, no credits)."""
    order = list(dict.fromkeys([*(preferences or []), *FALLBACK]))
    by_name = {v.name: v for v in offering(capability)}
    chosen, passed_over, fallbacks = None, [], []
    for entry in order:
        name, model = named(entry)
        vendor = by_name.get(name)
        why = f"unknown {capability.value} provider" if vendor is None else vendor.serving(model).missing()
        if why is not None:
            passed_over.append(f"{name}: {why}")
        elif chosen is None:
            chosen = Choice(vendor, model)
        elif name != chosen.name and name not in fallbacks:
            fallbacks.append(name)
    if chosen is None:
        raise ProviderError(
            ErrorKind.not_configured, f"no {capability.value} provider can run: {'; '.join(passed_over)}"
        )
    chosen.passed_over, chosen.fallbacks = passed_over, fallbacks
    return chosen


def pick(capability: Capability, name: str, model: str | None = None) -> Pick:
    """A provider's pick for a capability: the model named (checked) or its default, with the durations a clip
    of that model snaps to."""
    card = declarations.vendor(name).card(model_for(capability, name, model), capability)
    return Pick(name=name, model=card.model, durations_s=card.durations_s, inputs=card.inputs)


def chosen_pick(capability: Capability, preferences: list[str] | None) -> tuple[Pick, list[str]]:
    """The pick for a capability from preferences, with notes on the providers passed over."""
    choice = choose(capability, preferences)
    chosen = pick(capability, choice.name, choice.model).model_copy(
        update={"fallbacks": tuple(choice.fallbacks)}
    )
    return chosen, [f"{capability.value}: passed over {p}" for p in choice.passed_over]


def lineup(preferences: dict[str, list[str]], hero_video: list[str] | None = None) -> Lineup:
    """Who does what for a campaign; `hero_video`, when given, are the engines for each story's hero shot."""
    picks: dict[Capability, Pick] = {}
    notes: list[str] = []
    for capability in Capability:
        picks[capability], passed = chosen_pick(capability, preferences.get(capability.value))
        notes += passed
    hero = None
    if hero_video is not None:
        hero, passed = chosen_pick(Capability.video, hero_video)
        notes += [f"hero {note}" for note in passed]
    return Lineup(picks=picks, hero_video=hero, notes=tuple(notes))


def retirement(capability: Capability, name: str, model: str | None) -> str | None:
    """Why a provider's model can no longer be used, when its card is retired: a vendor keeps the cards of models
    it shut down (OpenAI's Sora, though OpenAI makes no video now), so naming one says what to use instead."""
    vendor = declarations.vendors().get(name)
    card = next((c for c in vendor.cards(capability) if c.model == model), None) if vendor and model else None
    return f"{card.model}: {card.retired}" if card and card.retired else None


def model_for(capability: Capability, name: str, model: str | None) -> str:
    """The model to ask for: the one named (checked against the provider's cards) or its default."""
    if (retired := retirement(capability, name, model)) is not None:
        raise ProviderError(ErrorKind.invalid_input, retired, provider=name)
    vendor = declarations.vendor(name)
    if capability not in vendor.adapters:
        raise ProviderError(
            ErrorKind.invalid_input,
            f"{name} cannot make {capability.value}; known {capability.value} providers: {', '.join(known(capability))}",
        )
    return vendor.card(model or vendor.default_model(capability), capability).model


def card_of(spec: AssetSpec) -> ModelCard:
    """The card of the model a spec asks for (its provider's default when it names none)."""
    vendor = declarations.vendor(spec.provider)
    capability = Capability(spec.kind.value)
    return vendor.card(spec.model or vendor.default_model(capability), capability)


def parse_job(text: str) -> tuple[str, str] | None:
    """'provider:job_id' of an earlier generation as (provider, job id), the id checked against the vendor's
    shape; None when the text names no known provider."""
    name, colon, job_id = text.partition(":")
    vendor = declarations.vendors().get(name)
    if not colon or vendor is None:
        return None
    return name, vendor.checks_job_id(job_id)


def is_job(text: str) -> bool:
    """Whether text names an earlier generation as 'provider:job_id' (e.g. luma:4f2c…); a known provider with
    an id of the wrong shape raises invalid_input."""
    return parse_job(text) is not None


_classes: dict[tuple[str, Capability], type] = {}
_instances: dict[tuple[Capability, str], Any] = {}
_instances_lock = threading.Lock()
_throttles: dict[str, Throttle] = {}
_throttles_lock = threading.Lock()


def register(vendor: Vendor, classes: dict[Capability, type]) -> None:
    """Add (or replace) a vendor declared in code, with its adapter classes: a plugin without a package, or a
    test's stand-in."""
    declarations.register(vendor)
    for capability, cls in classes.items():
        _classes[(vendor.name, capability)] = cls
    with _instances_lock:
        for capability in classes:
            _instances.pop((capability, vendor.name), None)


def unregister(name: str) -> None:
    declarations.unregister(name)
    for key in [k for k in _classes if k[0] == name]:
        del _classes[key]
    with _instances_lock:
        for key in [k for k in _instances if k[1] == name]:
            del _instances[key]


def adapter_class(capability: Capability, name: str) -> type:
    """The class that does a capability for a provider, imported on first use (vendor SDKs cost start-up)."""
    key = (name, capability)
    if key not in _classes:
        vendor = declarations.vendor(name)
        target = vendor.adapters.get(capability)
        if target is None:
            raise ProviderError(ErrorKind.not_configured, f"{name} has no {capability.value} provider")
        module, _, cls = target.partition(":")
        _classes[key] = getattr(importlib.import_module(module), cls)
    return _classes[key]


def provider(capability: Capability, name: str) -> Any:
    """A ready provider instance; one per process, since providers hold clients and job tables."""
    key = (capability, name)
    with _instances_lock:  # stories ask from worker threads: two instances would split a vendor's job table
        if key not in _instances:
            _instances[key] = adapter_class(capability, name)()
        return _instances[key]


def check(spec: AssetSpec) -> None:
    """Refuse a spec before anything is paid for: its adapter's checks where it has them (card, options, the
    vendor's own rules), else its model card's."""
    capability = Capability(spec.kind.value)
    adapter = provider(capability, spec.provider)
    check_local_inputs(spec, spec.provider)
    if hasattr(adapter, "check"):
        adapter.check(spec)
    else:
        declarations.vendor(spec.provider).card(spec.model, capability).check(spec)


def billable(name: str) -> bool:
    return declarations.vendor(name).billable


def cpu_bound(name: str) -> bool:
    return declarations.vendor(name).cpu_bound


def limits(name: str) -> Limits:
    """A provider's caps: its declaration's, with whatever CUTROOM_PROVIDER_LIMITS says for it on top."""
    base = declarations.vendor(name).limits
    override = settings().provider_limits.get(name, {})
    return Limits.model_validate({**base.model_dump(), **override})


def throttle(name: str) -> Throttle:
    """The process's one throttle per provider, so every story and task shares its caps."""
    with _throttles_lock:  # stories ask from worker threads: two throttles would double the caps
        if name not in _throttles:
            _throttles[name] = Throttle(limits(name))
        return _throttles[name]


def reset() -> None:
    """Forget built adapters and throttles (after the simulator, keys or declarations changed)."""
    with _instances_lock:
        _instances.clear()
    with _throttles_lock:
        _throttles.clear()
    _classes.clear()
    declarations._load.cache_clear()
