"""The local refiner: answers a judge's weakest criteria with the prompt directives that address them."""

from __future__ import annotations

from cutroom.assets import Score
from providers.local.vocabulary import DIRECTIVES, directives_in

#: Directives added per round: enough to move the score, few enough to keep the subject in front.
MAX_NEW_PER_ROUND = 2


class LocalRefiner:
    """Rewrites a prompt as "<original>, <directive>, <directive>", weakest criterion first."""

    name = "local"

    def refine(self, prompt: str, score: Score, target: float) -> str:
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
