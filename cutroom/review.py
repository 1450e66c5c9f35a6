"""Work left for a person to look at: what a vendor refused twice, with what was asked, and a reviewer's word on
each story when a brief asks for review (the form and what its answers mean)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, NamedTuple

from pydantic import BaseModel, Field, create_model

from cutroom.boundary import text
from cutroom.plan import Story


class NeedsReview(Exception):
    """A request a vendor refused on moderation grounds even after it was rephrased or re-seeded."""

    def __init__(self, message: str, prompt: str = ""):
        self.prompt = prompt
        super().__init__(message)


class Decision(StrEnum):
    approve = "approve"
    reject = "reject"
    drop = "drop"


class StoryDecision(BaseModel):
    """A reviewer's word on one story; left empty, the story is asked about again in the next round."""

    decision: Decision | None = Field(
        default=None,
        description="approve: it goes on; reject: its keyframe is made again with the note as direction; "
        "drop: the story is left out.",
    )
    note: text(500) = Field(default="", description="Why; with reject, what the new keyframe should change.")


class Verdicts(NamedTuple):
    """One review round's answers, sorted: what goes on, what is made again with which note, what is left out."""

    approved: list[str]
    rejected: dict[str, str]
    dropped: dict[str, str]


def review_form(title: str, asked: dict[str, str], description: str) -> type[BaseModel]:
    """The form a review round asks: a decision per story id in `asked` (each with what to look at), so the
    Prefect UI renders it and `cutroom review` fills it in with the same fields."""
    fields: dict[str, Any] = {
        story_id: (StoryDecision, Field(default_factory=StoryDecision, description=look_at))
        for story_id, look_at in asked.items()
    }
    return create_model(title, __doc__=description, **fields)


def sorted_answers(answers: BaseModel) -> Verdicts:
    """The round's answers by decision. A rejection without a note would make the same keyframe again, so it
    stays undecided and is asked again."""
    verdicts = Verdicts([], {}, {})
    for story_id, said in answers.model_dump().items():
        decision, note = said["decision"], said["note"]
        if decision == Decision.approve:
            verdicts.approved.append(story_id)
        elif decision == Decision.reject and note:
            verdicts.rejected[story_id] = note
        elif decision == Decision.drop:
            verdicts.dropped[story_id] = note
    return verdicts


def directed(story: Story, notes: list[str]) -> Story:
    """The story whose keyframe prompt carries every reviewer's note, oldest first, as direction."""
    if not notes:
        return story
    direction = " ".join(n.rstrip(".") + "." for n in notes)
    return story.model_copy(
        update={"keyframe_prompt": f"{story.keyframe_prompt.rstrip()} Direction: {direction}"}
    )
