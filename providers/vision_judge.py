"""A vision judge: a language model that sees the keyframe (or frames of a clip) scores it against the story's
acceptance criteria and the brand, criterion by criterion with a reason for each.

Its verdict is combined with the technical judge's measurements (weights: CUTROOM_JUDGE_VISION_WEIGHT), so an
asset must be both well made and on brief: a sharp, on-palette image that shows nothing the brief asked for no
longer scores 90. Speech is scored by the technical judge alone: the model sees pictures, not sound.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image
from pydantic import BaseModel, Field, create_model

from cutroom.assets import AssetKind, AssetSpec, Score
from cutroom.boundary import text
from cutroom.brief import Brand
from cutroom.capabilities import Capability
from cutroom.media import probe
from cutroom.settings import settings
from providers import registry
from providers.llm import LanguageModel, Picture, Question
from providers.local.judge import sample_frames

#: The long side of a picture shown to the judge: enough to read a headline, few tokens.
PICTURE_SIDE = 768
#: Frames of a clip the judge sees: its start, middle and end.
CLIP_FRAMES = (0, 2, 5)

SYSTEM = (
    "You are the creative director of a marketing team. You judge one piece of campaign media against its brief "
    "and its brand. Score each criterion from 0 (fails it) to 100 (fully meets it), and give a short, concrete "
    "reason a designer could act on. Be strict: an image that is well made but does not show what the brief "
    "asks for fails on brief."
)


class Mark(BaseModel):
    score: int = Field(ge=0, le=100)
    reason: text(300, 1)


class CriterionMark(Mark):
    criterion: text(300, 1)


class Verdict(BaseModel):
    """The judge's marks; `_verdict_for` adds exactly one acceptance mark per criterion."""

    subject_present: Mark = Field(description="The subject the prompt asks for is there and recognisable.")
    message_legible: Mark = Field(description="The headline or message can be read and is spelled right.")
    brand_fit: Mark = Field(description="Palette, tone and style fit the brand.")
    composition: Mark = Field(description="Framing, balance, focus; room for captions.")
    text_rendering: Mark = Field(description="Any text in the image is clean, not garbled.")
    safety: Mark = Field(description="Nothing offensive, unsafe or off-limits for the brand.")
    acceptance: list[CriterionMark] = Field(
        description="One mark per acceptance criterion, in the order given."
    )

    def marks(self) -> dict[str, Mark]:
        named = {name: getattr(self, name) for name in VISION_CRITERIA}
        return named | {f"criterion {n}: {m.criterion[:60]}": m for n, m in enumerate(self.acceptance, 1)}


VISION_CRITERIA = (
    "subject_present",
    "message_legible",
    "brand_fit",
    "composition",
    "text_rendering",
    "safety",
)


class VisionJudge:
    """A judge on any language model that reads images; subclasses name the model's vendor."""

    def __init__(self, model: LanguageModel):
        self.llm = model
        self.name = model.name

    def call_usd(self, model: str | None = None) -> float:
        """What one call typically costs, for a story's estimate."""
        return self.llm.typical_call_usd(model)

    def score(
        self,
        media: Path,
        spec: AssetSpec,
        brand: Brand,
        criteria: tuple[str, ...] = (),
        model: str | None = None,
    ) -> Score:
        technical = registry.provider(Capability.judge, "local").score(media, spec, brand)
        if spec.kind is AssetKind.speech:
            return technical.model_copy(update={"judge": self.name})
        verdict = self.llm.ask(
            Question(
                purpose="judge",
                system=SYSTEM,
                user=_brief(spec, brand, criteria),
                pictures=_pictures(media, spec),
            ),
            _verdict_for(len(criteria)),
            model=model,
        )
        marks = verdict.marks()
        vision = sum(m.score for m in marks.values()) / len(marks)
        weight = settings().judge_vision_weight
        return Score(
            total=round(weight * vision + (1 - weight) * technical.total, 2),
            criteria={**technical.criteria, **{name: float(m.score) for name, m in marks.items()}},
            reasons={name: m.reason for name, m in marks.items()},
            judge=self.name,
        )


def _brief(spec: AssetSpec, brand: Brand, criteria: tuple[str, ...]) -> str:
    what = (
        "a keyframe image"
        if spec.kind is AssetKind.image
        else "frames from the start, middle and end of a clip"
    )
    lines = [
        f"You see {what} for the brand {brand.name}.",
        f"It was asked for with this prompt: {spec.prompt}",
        f"Brand voice: {brand.voice or 'not given'}; palette: {', '.join(brand.palette)}.",
    ]
    if spec.style and spec.style.headline:
        lines.append(f"Its message (headline): {spec.style.headline}")
    if brand.avoid:
        lines.append(f"The brand never wants to be associated with: {', '.join(brand.avoid)}.")
    lines.append("Acceptance criteria, to be marked one by one in this order:")
    lines += [f"{n}. {c}" for n, c in enumerate(criteria, 1)] or ["(none given: leave acceptance empty)"]
    return "\n".join(lines)


def _verdict_for(criteria: int) -> type[Verdict]:
    """A verdict with exactly one acceptance mark per criterion, in the schema the model is given."""
    return create_model(
        "Verdict",
        __base__=Verdict,
        acceptance=(
            list[CriterionMark],
            Field(min_length=criteria, max_length=criteria, description="One mark per criterion, in order."),
        ),
    )


def _pictures(media: Path, spec: AssetSpec) -> tuple[Picture, ...]:
    if spec.kind is AssetKind.image:
        with Image.open(media) as image:
            return (_jpeg(image),)
    info = probe(media)
    frames = sample_frames(media, info.width, info.height, info.duration_s or 0.0)
    picked = [frames[i] for i in CLIP_FRAMES if i < len(frames)] or frames[:1]
    return tuple(_jpeg(Image.fromarray((frame * 255).astype("uint8"))) for frame in picked)


def _jpeg(image: Image.Image) -> Picture:
    picture = image.convert("RGB")
    picture.thumbnail((PICTURE_SIDE, PICTURE_SIDE))
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=85)
    return Picture(data=buffer.getvalue(), mime="image/jpeg")
