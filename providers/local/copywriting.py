"""Offline copy a marketer could ship: the brief's offer, said to the reader, in the brand's voice.

A brief is written for the team ("Get young professionals to open a high-yield savings account"); read out to
a customer it sounds like the memo it is. So the rule planner reads the brief into a `Pitch` (what is offered,
what the goal asks the reader to do, who reads it, how the brand speaks) and writes from phrase tables: second
person, a different angle per story, shaped by its channel. No run of `ECHO_WORDS` words of the goal or the
audience reaches the copy, and no word the brand avoids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeVar

from cutroom.avoid import without
from cutroom.brief import Brief
from cutroom.channels import Channel
from cutroom.plan import Copy
from providers.local.phrasebook import (
    ANYONE,
    CATEGORIES,
    EVERYDAY,
    INTEREST,
    KINDS,
    READERS,
    SUBJECT_LINES,
    TONES,
    Category,
    GoalKind,
    Reader,
    Tone,
)

#: A run of this many words shared with the goal or audience reads as the brief quoted back at the reader.
ECHO_WORDS = 5
#: Headlines are captions on a frame: longer ones fall back to the brand name alone.
HEADLINE_CHARS = 48
#: An offer longer than this is a clause, not a thing; its last words (the head noun) are kept.
OFFER_WORDS = 4
#: A voice-over's pace: what can be said over a story's shots.
WORDS_PER_SECOND = 2.4

#: Drafts tried per story before a repeat is accepted: every combination of the rotating lines (see `draft`).
DRAFTS = 48

#: What a story's body and voice-over are made of, by channel: short and punchy where people scroll,
#: a fuller case on LinkedIn and YouTube, a body worth opening in email (which speaks only over its banner).
SHAPES: dict[Channel, tuple[tuple[str, ...], tuple[str, ...]]] = {
    Channel.tiktok: (("you", "payoff"), ("you", "payoff", "headline", "cta")),
    Channel.instagram: (("you", "payoff", "tone"), ("you", "payoff", "headline", "cta")),
    Channel.x: (("you", "payoff"), ("you", "payoff", "cta")),
    Channel.facebook: (("you", "promise", "payoff"), ("you", "payoff", "promise", "cta")),
    Channel.linkedin: (("you", "promise", "payoff", "tone"), ("you", "payoff", "promise", "cta")),
    Channel.youtube: (("you", "promise", "payoff", "tone"), ("you", "payoff", "promise", "tone", "cta")),
    Channel.email: (("you", "promise", "payoff", "tone", "signoff"), ("you", "cta")),
}

#: Internal phrasing that opens a goal, peeled off in turn until the offer is left.
FRAMES = tuple(
    re.compile(rf"^{frame}\s+", re.IGNORECASE)
    for frame in (
        r"(?:get|encourage|persuade|convince|help|invite|inspire|motivate|nudge|bring|turn)\s+.+?\s+(?:to|into)",
        r"(?:drive|increase|boost|grow|generate|win|raise|double|lift|build|maximi[sz]e|improve)\s+(?:\S+\s+){0,3}?"
        r"(?:sign-?ups?|registrations|downloads|installs|sales|bookings|reservations|donations|awareness|leads"
        r"|trials|subscriptions|orders|visits|traffic|engagement|consideration|interest|revenue|members)"
        r"(?:\s+(?:of|for|to|in|on|at|with))?",
        r"(?:launch|relaunch|introduce|promote|announce|showcase|market|advertise|unveil|reveal|sell|celebrate)",
        r"(?:open|buy|try|book|download|install|join|sign\s+up\s+(?:for|to)|subscribe\s+to|order|reserve|visit"
        r"|donate\s+to|support|give\s+to|register\s+for|start|switch\s+to|use|adopt|fund|discover)",
        r"(?:a|an|the|our|their|its|this|new|brand-new|all-new|latest)",
    )
)
#: Where a goal's offer ends and its context (where, for whom, why) begins.
OFFER_END = re.compile(
    r"[,;:.!?()]|\s(?:that|which|who|where|with|for|in|at|from|to|by|across|among|so|and|or|before|during"
    r"|over|on|via|through|while|when|using|than)\s",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Pitch:
    """What the copy says, read from the brief: never the brief's own sentences."""

    brand: str
    offer: str
    kind: GoalKind
    category: Category
    reader: Reader
    tone: Tone
    avoid: tuple[str, ...]
    quoted: tuple[str, ...]  # the brief's internal wording the copy must not echo

    @property
    def cta(self) -> str:
        return self._say(self.kind.cta)

    def promise(self, nth: int = 0) -> str:
        return self._pick(self.kind.promises, nth)

    def payoff(self, nth: int = 0) -> str:
        return self._pick(self.category.payoffs, nth)

    def _say(self, template: str) -> str:
        return without(template.format(brand=self.brand, offer=self.offer), self.avoid)

    def _pick(self, pool: tuple[str, ...], nth: int) -> str:
        """The nth line of a pool, or the next one that does not echo the brief; none if all of them do."""
        lines = (self._say(pool[(nth + k) % len(pool)]) for k in range(len(pool)))
        return next((line for line in lines if not any(echoes(line, q) for q in self.quoted)), "")

    def headline(self, channel: Channel, nth: int) -> str:
        pool = SUBJECT_LINES if channel is Channel.email else self.tone.headlines
        line = self._pick(pool, nth)
        return line if line and len(line) <= HEADLINE_CHARS else self.brand[:HEADLINE_CHARS].strip()

    def draft(self, channel: Channel, turn: int) -> tuple[Copy, list[str]]:
        """A story's copy and the sentences of its voice-over (the first and last are kept longest).

        Consecutive turns differ in every line: the reader line turns over every 4, the payoff every 3 and the
        tone line every 4, offset by one each dozen, so 48 turns give 48 different drafts of a shape.
        """
        headline, cta = self.headline(channel, turn), self.cta
        lines = {
            "you": self._pick(self.reader.lines, turn),
            "payoff": self.payoff(turn),
            "promise": self.promise(turn + 1),
            "tone": self._pick(self.tone.lines, turn + turn // 12),
            "signoff": self._pick((f"{self.kind.cta} whenever you're ready.",), 0),
            "headline": sentence(headline),
            "cta": sentence(cta),
        }
        body, spoken = SHAPES[channel]
        copy = Copy(headline=headline, body=" ".join(filter(None, (lines[k] for k in body))), cta=cta)
        return copy, [lines[k] for k in spoken if lines[k]]


class Copywriter:
    """Writes a plan's stories in turn, none repeating a body or voice-over already written for the plan."""

    def __init__(self, pitch: Pitch):
        self.pitch = pitch
        self._said: set[str] = set()

    def write(self, channel: Channel, index: int, seconds: float) -> tuple[Copy, str]:
        """The copy of the plan's story at `index`, and its voice-over for `seconds` of shots (none for a still)."""
        first = None
        for turn in range(index, index + DRAFTS):
            copy, lines = self.pitch.draft(channel, turn)
            voice_over = fit(lines, seconds) if seconds else ""
            first = first or (copy, voice_over)
            if copy.body not in self._said and voice_over not in self._said:
                break
        else:
            copy, voice_over = first
        self._said |= {copy.body, voice_over} - {""}
        return copy, voice_over


def fit(sentences: list[str], seconds: float) -> str:
    """A voice-over that can be spoken in the story's running time: middle sentences go first."""
    limit = max(4, int(seconds * WORDS_PER_SECOND))
    kept = list(sentences)
    while len(kept) > 2 and sum(len(s.split()) for s in kept) > limit:
        kept.pop(-2)
    words = " ".join(kept).split()
    return " ".join(words) if len(words) <= limit else " ".join(words[:limit]).rstrip(",;:.") + "."


def read_pitch(brief: Brief) -> Pitch:
    """The brief read as a copywriter would: what is offered, what is asked, who listens, how the brand speaks."""
    avoid = tuple(brief.brand.avoid)
    goal = without(brief.goal, avoid)
    kind = _first(KINDS, goal, INTEREST)
    offer = _offer(goal, brief.brand.name) or kind.noun
    return Pitch(
        brand=brief.brand.name,
        offer=offer,
        kind=kind,
        category=_first(CATEGORIES, f"{goal} {offer}", EVERYDAY),
        reader=_first(READERS, brief.audience, ANYONE),
        tone=_tone(brief.brand.voice),
        avoid=avoid,
        quoted=(brief.goal, brief.audience),
    )


def echoes(text: str, source: str, words: int = ECHO_WORDS) -> bool:
    """Whether the text repeats a run of `words` consecutive words of the source (case and punctuation aside)."""
    said, written = _words(text), _words(source)
    runs = {tuple(written[i : i + words]) for i in range(len(written) - words + 1)}
    return any(tuple(said[i : i + words]) in runs for i in range(len(said) - words + 1))


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _offer(goal: str, brand: str) -> str:
    """The thing a goal offers: "Get young professionals to open a high-yield savings account" offers a
    "high-yield savings account"; the brand's own name is left out, as the copy names the brand itself."""
    offer = re.sub(rf"\b{re.escape(brand)}(?:['’]s)?(?!\w)", " ", goal.strip(), flags=re.IGNORECASE)
    while True:
        trimmed = offer.lstrip(" ,;:-–—")
        for frame in FRAMES:
            trimmed = frame.sub("", trimmed, count=1)
        if trimmed == offer:
            break
        offer = trimmed
    words = OFFER_END.split(f"{offer} ", maxsplit=1)[0].split()
    return " ".join(words[-OFFER_WORDS:] if len(words) > OFFER_WORDS else words)


Keyed = TypeVar("Keyed", GoalKind, Category, Reader)


def _first(table: tuple[Keyed, ...], text: str, default: Keyed) -> Keyed:
    """The first row with a key that starts a word of the text; a key of three letters or fewer must be the
    whole word ("tea" is not "team", "new" is not "newsletter")."""
    lowered = text.lower()
    return next((row for row in table if any(_keyed(k, lowered) for k in row.keys)), default)


def _keyed(key: str, text: str) -> bool:
    end = r"\b" if len(key) <= 3 else ""
    return re.search(rf"\b{re.escape(key)}{end}", text) is not None


def _tone(voice: str) -> Tone:
    """The tone of the first voice word that names one: "bright, optimistic, precise" is bold."""
    for word in re.findall(r"[a-z-]+", voice.lower()):
        for tone in TONES:
            if any(word.startswith(key) for key in tone.keys):
                return tone
    return TONES[0]


def sentence(text: str) -> str:
    """The text as a sentence: capitalised, with a full stop unless it has its own end."""
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if not text or text.endswith((".", "!", "?", "…")) else ".")
