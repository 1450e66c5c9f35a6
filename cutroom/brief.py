"""The campaign brief: what a marketer writes, validated before a cent is spent.

Every rule of the input boundary (cutroom/boundary.py) holds here, whether the brief comes as a file or as a
Prefect parameter: bounded text without control characters, finite numbers, messages that quote little. A brief's
files (logo, style reference) are read only from the brief's own folder or an allowed root, and only when their
bytes are an image.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cutroom.boundary import BoundaryError, finite, image_file, load_document, quote, text
from cutroom.capabilities import Capability
from cutroom.channels import Channel

HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
CAMPAIGN_ID = r"^[a-z0-9][a-z0-9-]{0,62}$"
#: At most this many problems are listed; the rest are counted (a fuzzed brief can have hundreds).
MAX_PROBLEMS = 12


class BriefError(ValueError):
    """A brief that cannot be used; `problems` names every wrong field in plain words."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        shown = problems[:MAX_PROBLEMS]
        if len(problems) > MAX_PROBLEMS:
            shown.append(f"… and {len(problems) - MAX_PROBLEMS} more")
        self.problems = shown
        super().__init__(f"{source} has {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in shown))


def _not_a_link(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(("http://", "https://", "file:")):
        raise ValueError(f"must be a file beside the brief, not a link ({quote(value)})")
    return value


class Brand(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: text(80, 1) = Field(description="The brand name as it should appear on screen.")
    voice: text(200) = Field(
        default="confident, warm, clear",
        description="How the brand speaks: a few adjectives the copy should sound like.",
    )
    palette: list[str] = Field(
        min_length=1,
        max_length=8,
        description="Brand colours as hex codes like #1A2B3C, most important first.",
    )
    logo: Path | None = Field(
        default=None, description="Optional logo image (PNG, JPEG or WebP) beside the brief."
    )
    style_reference: text(2000) | None = Field(
        default=None,
        description="Optional image whose look every keyframe follows: an http(s) URL (Luma fetches only "
        "links), or a file beside the brief for providers that take files.",
    )
    avoid: list[text(80, 1)] = Field(
        default_factory=list, max_length=50, description="Words the copy and prompts must never use."
    )
    template: text(100, 1) | None = Field(
        default=None,
        description="A brand template every story is also rendered into, with its copy, keyframe, first clip and "
        "voice: a Creatomate template id (providers: {template: [creatomate]}); offline, a local stand-in composes "
        "the same layers.",
    )

    @field_validator("logo", mode="before")
    @classmethod
    def _logo_is_a_file(cls, value: Any) -> Any:
        return _not_a_link(value)

    @field_validator("palette")
    @classmethod
    def _hex_colours(cls, palette: list[str]) -> list[str]:
        bad = [quote(c, 20) for c in palette if not HEX_COLOUR.match(str(c))]
        if bad:
            raise ValueError(f"colours must be hex codes like #1A2B3C; these are not: {', '.join(bad)}")
        return [c.upper() for c in palette]


#: Providers best first; each `name` or `name:model` (kling:kling-v2-1-master, fal:fal-ai/ltx-video/image-to-video).
ProviderList = Annotated[list[text(120, 1)], Field(min_length=1, max_length=12)]


class ShotEngines(BaseModel):
    """Video engines per kind of shot: the hero shot (a story's opening) on one, the rest on another."""

    model_config = ConfigDict(extra="forbid")

    hero: ProviderList = Field(description="Engines for each story's hero shot, best first.")
    default: ProviderList = Field(description="Engines for every other shot, best first.")


class Review(StrEnum):
    """When a person looks at the stories before more money is spent."""

    none = "none"
    before_video = "before_video"
    before_publish = "before_publish"


class Brief(BaseModel):
    """A campaign brief. Field descriptions double as the brief format's documentation."""

    model_config = ConfigDict(extra="forbid")

    campaign: text(80, 1) = Field(description="The campaign's name.")
    id: str | None = Field(
        default=None,
        pattern=CAMPAIGN_ID,
        description="Folder-safe campaign id (lowercase letters, digits, dashes); default made from the name.",
    )
    brand: Brand
    goal: text(1000, 3) = Field(description="What the campaign should achieve, in one sentence.")
    audience: text(1000, 3) = Field(description="Who the campaign speaks to.")
    channels: list[Channel] = Field(
        min_length=1, max_length=20, description="Where it runs: " + ", ".join(c.value for c in Channel)
    )
    timeline: text(200) = Field(
        default="", description="When it runs, free text (e.g. 'launch week of 3 March')."
    )
    stories: int | None = Field(
        default=None, ge=1, le=10_000, description="How many stories to plan; default one per channel."
    )
    budget_usd: finite(ge=0, le=1_000_000) = Field(
        default=50.0, description="The most the campaign may spend on providers, in US dollars."
    )
    quality_target: finite(ge=0, le=100) = Field(default=85, description="Score (0-100) an asset must reach.")
    max_iterations: int = Field(default=5, ge=1, le=20, description="Most refinement rounds per asset.")
    review: Review = Field(
        default=Review.none,
        description="When a person approves the stories: none; before_video (each story's keyframe, before its "
        "paid clips: approve, reject with a note to have it made again, or drop); before_publish (each made "
        "story, before the reels: approve or drop). The campaign waits in Prefect until every story is decided.",
    )
    providers: dict[str, ProviderList | ShotEngines] = Field(
        default_factory=dict,
        description="Preferred providers per capability ("
        + ", ".join(c.value for c in Capability)
        + "), best first, each 'name' or 'name:model'; video may also be {hero: [...], default: [...]}.",
    )

    @field_validator("channels")
    @classmethod
    def _unique_channels(cls, channels: list[Channel]) -> list[Channel]:
        return list(dict.fromkeys(channels))

    @field_validator("providers")
    @classmethod
    def _known_capabilities(
        cls, providers: dict[str, list[str] | ShotEngines]
    ) -> dict[str, list[str] | ShotEngines]:
        capabilities = [c.value for c in Capability]
        unknown = sorted(set(providers) - set(capabilities))
        if unknown:
            named = ", ".join(quote(u, 30) for u in unknown[:5])
            raise ValueError(f"unknown capability {named}; use one of {', '.join(capabilities)}")
        split = sorted(
            k for k, v in providers.items() if isinstance(v, ShotEngines) and k != Capability.video
        )
        if split:
            raise ValueError(f"only video takes {{hero, default}} engines, not {', '.join(split)}")
        return providers

    def preferences(self, hero: bool = False) -> dict[str, list[str]]:
        """Providers per capability, best first: for a hero shot's video when `hero`."""
        return {
            capability: (chosen.hero if hero else chosen.default)
            if isinstance(chosen, ShotEngines)
            else chosen
            for capability, chosen in self.providers.items()
        }

    @property
    def hero_engines(self) -> bool:
        """Whether hero shots have engines of their own."""
        return isinstance(self.providers.get(Capability.video.value), ShotEngines)

    @property
    def campaign_id(self) -> str:
        return self.id or slugify(self.campaign)


def slugify(name: str) -> str:
    """A folder-safe id from a campaign name: letters transliterated to Latin where they can be (Café → cafe);
    a name with letters that cannot be also carries a hash of itself, so two such campaigns never share a
    folder (春の新作 → campaign-733a689c, 北京 Launch → launch-…)."""
    latin = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", latin.lower()).strip("-")[:48].strip("-")
    lost = any(c.isalnum() and not _ascii(c) for c in name)
    if not lost and slug:
        return slug
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return f"{slug}-{digest}" if slug else f"campaign-{digest}"


def _ascii(character: str) -> str:
    return unicodedata.normalize("NFKD", character).encode("ascii", "ignore").decode("ascii")


def _field_path(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item + 1}]" if parts else f"item {item + 1}"]
        elif not str(item).startswith(("function-", "constrained-", "str", "nullable")):
            parts.append(quote(item, 40).strip("'") if not isinstance(item, str) else item[:40])
    return ".".join(parts) or "brief"


def _sentence(error: dict[str, Any]) -> str:
    field = _field_path(error["loc"])
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "missing":
        return f"'{field}' is missing ({_describe(error['loc'])})"
    if kind == "extra_forbidden":
        return f"'{field}' is not a brief field; check its spelling (see the brief format in README.md)"
    if kind == "enum":
        which = ", which is not one we publish to" if field.startswith("channels") else ""
        return f"'{field}' is {quote(value)}{which}; use one of {ctx.get('expected')}"
    if kind in ("string_too_short", "too_short"):
        least = ctx.get("min_length", 1)
        if not (value.strip() if isinstance(value, str) else value):
            return f"'{field}' is empty ({_describe(error['loc'])})"
        return (
            f"'{field}' is too short: at least {least} {'characters' if isinstance(value, str) else 'items'}"
        )
    if kind in ("string_too_long", "too_long"):
        most = ctx.get("max_length")
        size = len(value) if isinstance(value, str | list | dict) else "too many"
        unit = "characters" if isinstance(value, str) else "items"
        return f"'{field}' has {size} {unit}; at most {most}"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        bound = ctx.get("ge", ctx.get("le", ctx.get("gt", ctx.get("lt"))))
        word = {"greater_than_equal": "at least", "less_than_equal": "at most"}.get(kind, "beyond")
        return f"'{field}' is {quote(value)}; it must be {word} {bound}"
    if kind == "finite_number":
        return f"'{field}' must be a finite number, not {quote(value)}"
    if kind == "string_pattern_mismatch":
        return f"'{field}' is {quote(value)}; {_describe(error['loc'])}"
    if kind == "int_from_float":
        return f"'{field}' must be a whole number, not {quote(value)}"
    if kind in ("int_parsing", "float_parsing", "int_type", "float_type"):
        return f"'{field}' must be a number, not {quote(value)}"
    if kind == "string_type":
        return f"'{field}' must be text, not {quote(value)}"
    if kind in ("list_type", "dict_type", "model_type", "model_attributes_type"):
        wanted = {"list_type": "a list", "dict_type": "a mapping"}.get(kind, "a mapping of fields")
        return f"'{field}' must be {wanted}, not {quote(value)}"
    if kind == "value_error":
        return f"'{field}': {str(ctx.get('error', error['msg']))[:300]}"
    return f"'{field}': {error['msg'].lower()[:200]} (got {quote(value)})"


def _describe(loc: tuple[Any, ...]) -> str:
    model: Any = Brief
    info = None
    for item in loc:
        fields = getattr(model, "model_fields", {})
        if isinstance(item, str) and item in fields:
            info = fields[item]
            model = info.annotation
    description = (info.description if info else None) or "it is required"
    return description[0].lower() + description[1:]


def parse_brief(data: Any, source: str = "the brief") -> Brief:
    if not isinstance(data, dict):
        raise BriefError(source, ["the brief must be a mapping of fields (campaign, brand, goal, …)"])
    try:
        return Brief.model_validate(data)
    except ValidationError as exc:
        raise BriefError(source, [_sentence(e) for e in exc.errors()]) from None


def load_brief(path: Path | str) -> Brief:
    """Read a YAML or JSON brief through the input boundary; every problem is reported at once."""
    path = Path(path)
    try:
        data = load_document(path, "brief file")
    except BoundaryError as exc:
        raise BriefError(path.name, [str(exc)]) from None
    brief = parse_brief(data, path.name)
    problems = check_files(brief, path.parent)
    if problems:
        raise BriefError(path.name, problems)
    return brief


def allowed_roots(brief_folder: Path) -> list[Path]:
    from cutroom.settings import settings

    return [brief_folder.resolve(), *(Path(p).resolve() for p in settings().allowed_roots)]


def check_files(brief: Brief, brief_folder: Path, roots: list[Path] | None = None) -> list[str]:
    """The brief's files resolved (symlinks too) beside the brief or under an allowed root (`roots`, by default
    the brief's folder and CUTROOM_ALLOWED_ROOTS), and their bytes an image; each refused file is a problem. On
    success the brief holds their resolved paths."""
    problems = []
    roots = allowed_roots(brief_folder) if roots is None else roots
    if brief.brand.logo is not None:
        found, problem = _image_file("brand.logo", str(brief.brand.logo), brief_folder, roots)
        if problem:
            problems.append(problem)
        else:
            brief.brand.logo = found
    style = brief.brand.style_reference
    if style is not None and not style.startswith(("http://", "https://")):
        found, problem = _image_file("brand.style_reference", style, brief_folder, roots)
        if problem:
            problems.append(problem)
        else:
            brief.brand.style_reference = str(found)
    return problems


def _image_file(field: str, given: str, folder: Path, roots: list[Path]) -> tuple[Path | None, str | None]:
    if "://" in given or given.startswith("file:"):
        return None, f"'{field}' must be an http(s) link or a file beside the brief, not {quote(given)}"
    try:
        return image_file(given, f"'{field}'", "brief", folder, roots), None
    except BoundaryError as exc:
        return None, str(exc)
