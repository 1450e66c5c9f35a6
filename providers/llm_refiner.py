"""A prompt refiner on any language model: rewrites a keyframe's prompt from the judge's weakest criteria and
their reasons, keeping what scored well; and rephrases a prompt a vendor refused, from the vendor's reason."""

from __future__ import annotations

from pydantic import BaseModel, Field

from cutroom.assets import Score
from cutroom.boundary import text
from providers.llm import LanguageModel, Question

SYSTEM = (
    "You write prompts for image and video generation models for a marketing team. You change as little as needed: "
    "keep the subject, the brand and whatever scored well; fix what the judge found weak. Write one prompt, "
    "concrete and visual, with no preamble."
)
#: The longest prompt the refiner may write: every image vendor takes this much.
MAX_PROMPT = 1500


class Rewrite(BaseModel):
    prompt: text(MAX_PROMPT, 1) = Field(description="The whole new prompt.")
    changes: text(300, 1) = Field(description="What was changed and why, in one sentence.")


class LanguageRefiner:
    def __init__(self, model: LanguageModel):
        self.llm = model
        self.name = model.name

    def call_usd(self, model: str | None = None) -> float:
        """What one call typically costs, for a story's estimate."""
        return self.llm.typical_call_usd(model)

    def refine(
        self, prompt: str, score: Score, target: float, avoid: tuple[str, ...] = (), model: str | None = None
    ) -> str:
        weak = [
            f"- {name}: {value:.0f}/100" + (f" — {score.reasons[name]}" if name in score.reasons else "")
            for name, value in sorted(score.criteria.items(), key=lambda item: item[1])
            if value < target
        ]
        if not weak:
            return prompt
        strong = [name for name, value in score.criteria.items() if value >= target]
        user = "\n".join(
            [
                f"Prompt: {prompt}",
                f"The judge scored it {score.total:.0f}/100; the target is {target:.0f}.",
                "Weakest criteria, weakest first:",
                *weak,
                f"Scored well (keep): {', '.join(strong) or 'nothing yet'}.",
                *([f"Never use these words: {', '.join(avoid)}."] if avoid else []),
                "Rewrite the prompt.",
            ]
        )
        return self.llm.ask(
            Question(purpose="refine", system=SYSTEM, user=user), Rewrite, model=model, avoid=avoid
        ).prompt

    def rephrase_refused(
        self, prompt: str, reason: str, avoid: tuple[str, ...] = (), model: str | None = None
    ) -> str:
        user = "\n".join(
            [
                f"Prompt: {prompt}",
                f"The generation vendor refused it on moderation grounds: {reason[:500]}",
                "Rephrase it so that it shows the same marketing idea and passes moderation: drop or soften "
                "whatever the refusal points at.",
                *([f"Never use these words: {', '.join(avoid)}."] if avoid else []),
            ]
        )
        return self.llm.ask(
            Question(purpose="rephrase", system=SYSTEM, user=user), Rewrite, model=model, avoid=avoid
        ).prompt
