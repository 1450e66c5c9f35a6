"""The campaign brief: what a marketer writes, validated before a cent is spent."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cutroom.channels import Channel

HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
CAPABILITIES = ("planner", "image", "video", "speech", "judge")


class BriefError(ValueError):
    """A brief that cannot be used; `problems` names every wrong field in plain words."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(
            f"{source} has {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems)
        )


class Brand(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="The brand name as it should appear on screen.")
    voice: str = Field(
        default="confident, warm, clear",
        description="How the brand speaks: a few adjectives the copy should sound like.",
    )
    palette: list[str] = Field(
        min_length=1,
        max_length=8,
        description="Brand colours as hex codes like #1A2B3C, most important first.",
    )
    logo: Path | None = Field(default=None, description="Optional path to a logo image (PNG or JPEG).")
    style_reference: str | None = Field(
        default=None,
        description="Optional image whose look every keyframe follows: an http(s) URL (Luma fetches only "
        "links), or a file path relative to the brief for providers that take files.",
    )
    avoid: list[str] = Field(default_factory=list, description="Words the copy and prompts must never use.")

    @field_validator("palette")
    @classmethod
    def _hex_colours(cls, palette: list[str]) -> list[str]:
        bad = [c for c in palette if not HEX_COLOUR.match(str(c))]
        if bad:
            raise ValueError(
                f"colours must be hex codes like #1A2B3C; these are not: {', '.join(map(str, bad))}"
            )
        return [c.upper() for c in palette]


ProviderList = Annotated[list[str], Field(min_length=1)]


class Brief(BaseModel):
    """A campaign brief. Field descriptions double as the brief format's documentation."""

    model_config = ConfigDict(extra="forbid")

    campaign: str = Field(min_length=1, max_length=80, description="The campaign's name.")
    id: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
        description="Folder-safe campaign id (lowercase letters, digits, dashes); default made from the name.",
    )
    brand: Brand
    goal: str = Field(min_length=3, description="What the campaign should achieve, in one sentence.")
    audience: str = Field(min_length=3, description="Who the campaign speaks to.")
    channels: list[Channel] = Field(
        min_length=1, description="Where it runs: " + ", ".join(c.value for c in Channel)
    )
    timeline: str = Field(default="", description="When it runs, free text (e.g. 'launch week of 3 March').")
    stories: int | None = Field(
        default=None, ge=1, le=1000, description="How many stories to plan; default one per channel."
    )
    budget_usd: float = Field(default=50.0, ge=0, description="The most the campaign may spend on providers.")
    quality_target: int = Field(default=85, ge=0, le=100, description="Score (0-100) an asset must reach.")
    max_iterations: int = Field(default=5, ge=1, le=20, description="Most refinement rounds per asset.")
    providers: dict[str, ProviderList] = Field(
        default_factory=dict,
        description="Preferred providers per capability (planner, image, video, speech, judge), best first.",
    )

    @field_validator("channels")
    @classmethod
    def _unique_channels(cls, channels: list[Channel]) -> list[Channel]:
        return list(dict.fromkeys(channels))

    @field_validator("providers")
    @classmethod
    def _known_capabilities(cls, providers: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = sorted(set(providers) - set(CAPABILITIES))
        if unknown:
            raise ValueError(f"unknown capability {', '.join(unknown)}; use one of {', '.join(CAPABILITIES)}")
        return providers

    @property
    def campaign_id(self) -> str:
        return self.id or slugify(self.campaign)


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug or "campaign"


def _field_path(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item + 1}]" if parts else f"item {item + 1}"]
        else:
            parts.append(str(item))
    return ".".join(parts) or "brief"


def _sentence(error: dict[str, Any]) -> str:
    field = _field_path(error["loc"])
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "missing":
        return f"'{field}' is missing ({_describe(error['loc'])})"
    if kind == "extra_forbidden":
        return f"'{field}' is not a brief field; check its spelling (see the brief format in README.md)"
    if kind == "enum":
        return f"'{field}' is '{value}', which is not one we publish to; use one of {ctx.get('expected')}"
    if kind in ("string_too_short", "too_short"):
        return f"'{field}' is empty ({_describe(error['loc'])})"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        bound = ctx.get("ge", ctx.get("le", ctx.get("gt", ctx.get("lt"))))
        word = {"greater_than_equal": "at least", "less_than_equal": "at most"}.get(kind, "beyond")
        return f"'{field}' is {value}; it must be {word} {bound}"
    if kind == "string_pattern_mismatch":
        return f"'{field}' is '{value}'; {_describe(error['loc'])}"
    if kind in ("int_parsing", "float_parsing", "int_from_float"):
        return f"'{field}' must be a number, not '{value}'"
    if kind == "value_error":
        return f"'{field}': {ctx.get('error', error['msg'])}"
    return f"'{field}': {error['msg'].lower()} (got {value!r})"


def _describe(loc: tuple[Any, ...]) -> str:
    model: Any = Brief
    info = None
    for item in loc:
        fields = getattr(model, "model_fields", {})
        if isinstance(item, str) and item in fields:
            info = fields[item]
            model = info.annotation
    text = (info.description if info else None) or "it is required"
    return text[0].lower() + text[1:]


def parse_brief(data: Any, source: str = "the brief") -> Brief:
    if not isinstance(data, dict):
        raise BriefError(source, ["the brief must be a mapping of fields (campaign, brand, goal, …)"])
    try:
        return Brief.model_validate(data)
    except ValidationError as exc:
        raise BriefError(source, [_sentence(e) for e in exc.errors()]) from None


def load_brief(path: Path | str) -> Brief:
    """Read a YAML or JSON brief; every problem is reported at once as a BriefError."""
    path = Path(path)
    source = path.name
    if not path.is_file():
        raise BriefError(source, [f"no brief file at {path}"])
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        where = getattr(exc, "problem_mark", None) or getattr(exc, "lineno", None)
        line = (
            f" near line {where.line + 1}"
            if hasattr(where, "line")
            else (f" near line {where}" if where else "")
        )
        raise BriefError(
            source, [f"the file is not valid {'JSON' if path.suffix == '.json' else 'YAML'}{line}"]
        ) from None
    brief = parse_brief(data, source)
    if brief.brand.logo is not None:
        logo = brief.brand.logo if brief.brand.logo.is_absolute() else path.parent / brief.brand.logo
        if not logo.is_file():
            raise BriefError(source, [f"'brand.logo' points to {brief.brand.logo}, which does not exist"])
        brief.brand.logo = logo.resolve()
    style = brief.brand.style_reference
    if style is not None and not style.startswith(("http://", "https://")):
        found = Path(style) if Path(style).is_absolute() else path.parent / style
        if not found.is_file():
            raise BriefError(
                source,
                [f"'brand.style_reference' points to {style}, which is neither a file nor an http(s) URL"],
            )
        brief.brand.style_reference = str(found.resolve())
    return brief
