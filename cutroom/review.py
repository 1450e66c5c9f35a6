"""Work left for a person to look at: what a vendor refused twice, with what was asked."""

from __future__ import annotations


class NeedsReview(Exception):
    """A request a vendor refused on moderation grounds even after it was rephrased or re-seeded."""

    def __init__(self, message: str, prompt: str = ""):
        self.prompt = prompt
        super().__init__(message)
