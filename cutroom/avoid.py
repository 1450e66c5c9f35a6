"""Words a brand asked never to see: found and taken out of any text, wherever it came from (the brief's own
wording, a rule template, a language model's answer)."""

from __future__ import annotations

import re
from collections.abc import Iterable


def _pattern(word: str) -> re.Pattern[str]:
    return re.compile(rf"\b{re.escape(word)}\b", re.IGNORECASE)


def avoided_in(text: str, words: Iterable[str]) -> list[str]:
    """The avoided words the text uses."""
    return [word for word in words if _pattern(word).search(text)]


def without(text: str, words: Iterable[str]) -> str:
    """The text with every avoided word taken out, and the spaces it leaves closed up."""
    for word in words:
        text = re.sub(rf"\s*{_pattern(word).pattern}", "", text, flags=re.IGNORECASE)
    return re.sub(r"\s{2,}", " ", text).strip()
