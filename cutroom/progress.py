"""Progress news from a running campaign to whoever is watching in this process (the CLI's live view)."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

Listener = Callable[["Progress"], None]
_listeners: list[Listener] = []


class Progress(BaseModel):
    story_id: str
    step: str
    detail: str = ""
    done: bool = False
    failed: bool = False


def listen(listener: Listener) -> Callable[[], None]:
    """Start hearing progress; call the returned function to stop."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener)


def emit(story_id: str, step: str, detail: str = "", *, done: bool = False, failed: bool = False) -> None:
    news = Progress(story_id=story_id, step=step, detail=detail, done=done, failed=failed)
    for listener in list(_listeners):
        listener(news)
