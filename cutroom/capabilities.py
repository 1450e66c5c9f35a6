"""What providers can do: one open list. Asset kinds, a brief's provider preferences, the lineup and the CLI are
derived from it, so a new capability (avatar, music, a language model …) is one line here."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class Facts:
    name: str
    summary: str
    #: The folder a story keeps this capability's media in; None for capabilities that make no media.
    folder: str | None = None


CAPABILITIES: tuple[Facts, ...] = (
    Facts("planner", "plans a campaign's stories from its brief"),
    Facts("image", "makes keyframes and stills", folder="images"),
    Facts("video", "makes clips", folder="videos"),
    Facts("speech", "reads voice-overs", folder="audio"),
    Facts("avatar", "makes a talking-presenter clip from a voice and a face", folder="avatars"),
    Facts("template", "renders a brand template with a story's copy and media", folder="renders"),
    Facts("judge", "scores made media against the brief"),
    Facts("refiner", "rewrites a prompt from the judge's weakest criteria"),
)
FACTS = {facts.name: facts for facts in CAPABILITIES}


class _Named(StrEnum):
    @property
    def summary(self) -> str:
        return FACTS[self.value].summary


class _Kind(_Named):
    @property
    def folder(self) -> str:
        return FACTS[self.value].folder or self.value


Capability = _Named(
    "Capability", [(c.name, c.name) for c in CAPABILITIES], module=__name__, qualname="Capability"
)
#: What a generation makes: the capabilities that make media.
AssetKind = _Kind(
    "AssetKind", [(c.name, c.name) for c in CAPABILITIES if c.folder], module=__name__, qualname="AssetKind"
)
