"""The local refiner: answers a judge's weakest criteria with the prompt directives that address them."""

from __future__ import annotations

from cutroom.assets import Score
from providers.local.vocabulary import DIRECTIVES, directives_in

#: Directives added per round: enough to move the score, few enough to keep the subject in front.
MAX_NEW_PER_ROUND = 2
#: Words moderation filters commonly refuse; a refused prompt is rephrased without them.
SENSITIVE = frozenset(
    [
        "blood",
        "bloody",
        "gore",
        "gory",
        "nude",
        "naked",
        "nsfw",
        "sexy",
        "weapon",
        "weapons",
        "gun",
        "guns",
        "rifle",
        "kill",
        "killing",
        "dead",
        "corpse",
        "violent",
        "violence",
        "drug",
        "drugs",
        "explicit",
    ]
)
#: What a rephrased prompt ends with, so the vendor reads its intent.
SAFE = "family-friendly, safe for work"


class LocalRefiner:
    """Rewrites a prompt as "<original>, <directive>, <directive>", weakest criterion first."""

    name = "local"

    def call_usd(self, model: str | None = None) -> float:
        """Free: it runs here."""
        return 0.0

    def refine(
        self, prompt: str, score: Score, target: float, avoid: tuple[str, ...] = (), model: str | None = None
    ) -> str:
        """The prompt with the directives of its weakest criteria (no directive is an avoided word)."""
        present = directives_in(prompt)
        weakest_first = sorted(score.criteria.items(), key=lambda item: item[1])
        missing = [
            DIRECTIVES[name]
            for name, value in weakest_first
            if value < target and name in DIRECTIVES and name not in present
        ]
        if not missing:
            return prompt
        return ", ".join([prompt.rstrip().rstrip(","), *missing[:MAX_NEW_PER_ROUND]])

    def rephrase_refused(
        self, prompt: str, reason: str, avoid: tuple[str, ...] = (), model: str | None = None
    ) -> str:
        """The prompt without the words its vendor named in the refusal or that filters commonly refuse,
        marked family-friendly. (A language-model refiner can do better; offline, this is the rule.)"""
        named = {w.strip("'\".,:;").lower() for w in reason.split()}
        flagged = (
            SENSITIVE
            | {w.lower() for w in avoid}
            | (named & {w.strip(",.;:").lower() for w in prompt.split()} - _COMMON)
        )
        kept = [word for word in prompt.split() if word.strip(",.;:!?").lower() not in flagged]
        text = " ".join(kept).strip(" ,") or "a brand image"
        return text if SAFE in text else f"{text}, {SAFE}"


#: Words a refusal message and a prompt share that say nothing about why it was refused.
_COMMON = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "in",
        "on",
        "at",
        "to",
        "and",
        "or",
        "with",
        "for",
        "by",
        "from",
        "is",
        "it",
        "this",
        "that",
    ]
)
