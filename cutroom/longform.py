"""A long-form narration script (guided meditation, wellness audio): scenes of spoken clauses, each followed by
an exact pause.

The format, as writers already use it:
- a scene starts at a header: a line on its own that starts a new sentence, holds no pause mark and no
  sentence end, and ends without punctuation ("Settling in", "Scene 2 – Body scan");
- narration follows; it ends its sentences with . ? ! । or ॥, and may wrap over several lines;
- a pause mark such as (5 sec), (10 seconds), (1.5s) or (3 सेकंड) anywhere sets the pause after the words before
  it; marks in a row add up; every other clause end (a sentence end, the end of a scene) pauses 1.5 s.

Pause marks are timing, never speech: they are taken out of the text a voice reads.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

from pydantic import BaseModel, Field, TypeAdapter, ValidationError, computed_field

from cutroom.assets import AssetKind, AssetSpec
from cutroom.boundary import MAX_DOCUMENT_BYTES, BoundaryError, quote, text
from cutroom.lineup import Pick
from cutroom.manifest import CampaignStatus
from cutroom.pauses import PauseReport, TimedSegment, TimingSheet

DEFAULT_PAUSE_S = 1.5
#: A pause shorter than this cannot be told from the breaths inside a clause, so it could not be checked.
MIN_PAUSE_S = 0.3
MAX_PAUSE_S = 300.0
#: Silence a script may ask for in all: it bounds the master's size (and memory) whatever the file holds.
MAX_TOTAL_PAUSE_S = 3600.0
MAX_HEADER_CHARS = 80
#: A speech request's text stays well inside every vendor's limit (ElevenLabs takes 5,000 characters).
MAX_CLAUSE_CHARS = 1000

_UNITS = r"s|secs?|seconds?|सेकंड"
_PAUSE_MARK = re.compile(rf"\(\s*([-+−]?\s*\d+(?:\.\d+)?)\s*(?:{_UNITS})\.?\s*\)", re.IGNORECASE)
#: Sentence ends, with any closing quotes or brackets after them; a clause ends there.
_SENTENCE_END = re.compile(r"[.?!।॥…]+[\"'”’»)\]]*(?=\s|$)")
#: What a narration line may end with; a line that starts a sentence, ends none inside it and ends with none of
#: these is a header.
_NARRATION_END = tuple(".?!।॥…:;,")
_CLOSERS = "\"'”’»)]"
_LINE = TypeAdapter(text(max_length=MAX_DOCUMENT_BYTES))


class ScriptError(BoundaryError):
    """A script refused before anything is spoken, naming the line to fix."""

    def __init__(self, line: int, message: str):
        self.line = line
        super().__init__(f"line {line}: {message}")


def script_lines(script: str) -> Iterator[tuple[int, str]]:
    """A script's lines that hold anything, numbered from 1, the BOM and line ends taken off: what both script
    formats (this one and the scene scripts of cutroom.script) read. A script past MAX_DOCUMENT_BYTES, or a line
    that is no text (a control character), is a ScriptError naming where; a megabyte line is quoted by a few
    words only."""
    data = script.encode()
    if len(data) > MAX_DOCUMENT_BYTES:
        line = data[:MAX_DOCUMENT_BYTES].count(b"\n") + 1
        raise ScriptError(
            line, f"the script passes {MAX_DOCUMENT_BYTES // 1024} KB here ({len(data) / 1024:.0f} KB in all)"
        )
    for number, raw in enumerate(script.removeprefix("\ufeff").split("\n"), start=1):
        try:
            line = _LINE.validate_python(raw.rstrip("\r"))
        except ValidationError as exc:
            raise ScriptError(number, exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
        if line:
            yield number, line


class Segment(BaseModel, frozen=True):
    """One clause as a voice speaks it, and the silence that follows it."""

    text: str = Field(description="The words to speak, pause marks taken out.")
    pause_after_s: float = Field(ge=0, le=MAX_PAUSE_S)
    line: int = Field(description="The script line the clause starts on.")


class Scene(BaseModel, frozen=True):
    title: str
    line: int
    segments: tuple[Segment, ...]

    def slug(self, number: int) -> str:
        """A file-safe name that keeps the scene's order: '01-settling-in'; any script's letters are kept."""
        kept = "".join(c if unicodedata.category(c)[0] in "LMN" else " " for c in self.title.lower())
        return f"{number:02d}-{'-'.join(kept.split())[:40].strip('-') or 'scene'}"


class Script(BaseModel, frozen=True):
    scenes: tuple[Scene, ...]
    lead_in_s: float = Field(
        default=0.0, ge=0, le=MAX_PAUSE_S, description="Silence before the first words: a mark ahead of them."
    )

    @property
    def segments(self) -> list[Segment]:
        return [segment for scene in self.scenes for segment in scene.segments]


class _Clause:
    """A clause being read: its pause stays open to the marks that follow it until new words start."""

    def __init__(self, text: str, line: int):
        self.text, self.line = text, line
        self.pause_s: float | None = None


class _Reader:
    def __init__(self) -> None:
        self.scenes: list[tuple[str, int, list[_Clause]]] = []
        self.pending: list[str] = []  # words of a sentence not yet ended
        self.pending_line = 0
        self.last: _Clause | None = None
        self.lead_in_s = 0.0

    def header(self, title: str, line: int) -> None:
        self.close_scene()
        self.scenes.append((title, line, []))

    def words(self, chunk: str, line: int) -> None:
        position = 0
        for end in _SENTENCE_END.finditer(chunk):
            self._add(chunk[position : end.end()], line)
            self.end_clause()
            position = end.end()
        self._add(chunk[position:], line)

    def _add(self, words: str, line: int) -> None:
        if words.strip():
            if not self.pending:
                self.pending_line = line
            self.pending.append(words.strip())

    def end_clause(self) -> None:
        said = " ".join(self.pending)
        self.pending = []
        if not any(unicodedata.category(c)[0] in "LN" for c in said):
            return  # punctuation alone ("…") is nothing to speak
        if len(said) > MAX_CLAUSE_CHARS:
            raise ScriptError(
                self.pending_line,
                f"a sentence of {len(said)} characters; split it (at most {MAX_CLAUSE_CHARS} between pauses)",
            )
        self.last = _Clause(said, self.pending_line)
        self.scenes[-1][2].append(self.last)

    def pause(self, seconds: float, line: int) -> None:
        self.end_clause()
        if self.last is None:
            self.lead_in_s += seconds
            total = self.lead_in_s
        else:
            self.last.pause_s = total = (self.last.pause_s or 0.0) + seconds
        if total > MAX_PAUSE_S:
            raise ScriptError(line, f"pause marks in a row add up to {total:g} s; at most {MAX_PAUSE_S:g}")

    def close_scene(self) -> None:
        if not self.scenes:
            return
        self.end_clause()
        title, line, clauses = self.scenes[-1]
        if not clauses:
            raise ScriptError(
                line,
                f"scene {quote(title, 40)} has no narration below it; end each narration sentence with "
                ". ? ! or । (a line that starts a sentence without them reads as a scene header)",
            )


def parse_script(script: str) -> Script:
    """The scenes and timed clauses of a script, or a ScriptError naming the first line that cannot be read."""
    reader = _Reader()
    for number, line in script_lines(script):
        marks = list(_PAUSE_MARK.finditer(line))
        if not (
            marks
            or reader.pending
            or _SENTENCE_END.search(line)
            or line.rstrip(_CLOSERS).endswith(_NARRATION_END)
        ):
            if len(line) > MAX_HEADER_CHARS:
                raise ScriptError(
                    number,
                    f"{quote(line, 40)} reads as a scene header but is {len(line)} characters long; "
                    "end narration sentences with . ? ! or ।",
                )
            reader.header(line, number)
            continue
        if not reader.scenes:
            raise ScriptError(
                number, "narration before the first scene header; start the script with a header line"
            )
        position = 0
        for mark in marks:
            reader.words(line[position : mark.start()], number)
            reader.pause(_seconds(mark, number), number)
            position = mark.end()
        reader.words(line[position:], number)
    if not reader.scenes:
        raise ScriptError(1, "the script holds no scene header and no narration")
    reader.close_scene()
    return _script(reader)


def _seconds(mark: re.Match[str], line: int) -> float:
    seconds = float(re.sub(r"\s", "", mark.group(1)).replace("−", "-"))
    if seconds != 0 and not MIN_PAUSE_S <= seconds <= MAX_PAUSE_S:
        raise ScriptError(
            line,
            f"pause {quote(mark.group(), 30)} is out of range: a pause is 0 (none) or "
            f"{MIN_PAUSE_S:g} to {MAX_PAUSE_S:g} seconds",
        )
    return seconds


def _script(reader: _Reader) -> Script:
    scenes = []
    total = reader.lead_in_s
    for title, line, clauses in reader.scenes:
        segments = []
        for clause in clauses:
            pause = DEFAULT_PAUSE_S if clause.pause_s is None else clause.pause_s
            total += pause
            segments.append(Segment(text=clause.text, pause_after_s=pause, line=clause.line))
        scenes.append(Scene(title=title, line=line, segments=tuple(segments)))
    if total > MAX_TOTAL_PAUSE_S:
        raise BoundaryError(
            f"the script asks for {total:g} s of pauses in all; at most {MAX_TOTAL_PAUSE_S:g}"
        )
    return Script(scenes=tuple(scenes), lead_in_s=reader.lead_in_s)


class Master(BaseModel):
    """The stitched narration as stored: the master track in two formats, a file per scene, and where each clause
    sits in it."""

    uri: str = Field(description="master.wav")
    mp3: str = Field(description="master.mp3: the same samples, for players.")
    scenes: list[str] = Field(
        description="One WAV per scene, cut from the master: together they are the master."
    )
    gain_db: float = Field(description="The one gain that brought the master to its loudness.")
    sheet: TimingSheet = Field(exclude=True, description="Kept in the manifest as its `segments`.")

    @computed_field
    @property
    def sample_rate(self) -> int:
        return self.sheet.sample_rate

    @computed_field
    @property
    def duration_s(self) -> float:
        return self.sheet.duration_s

    @computed_field
    @property
    def lead_in_s(self) -> float:
        """Silence before the first words."""
        return self.sheet.lead_in_s


class LongformAudio(BaseModel):
    """What `longform_audio` hands back, kept as campaigns/{id}/longform/manifest.json (the timing sheet and the
    pause measurements are in it, no file of their own): the master, where every clause sits in it, and every
    pause as measured in it."""

    campaign_id: str
    status: CampaignStatus = Field(
        description="complete: every pause measured within tolerance; partial: the master is made but a pause is off."
    )
    master: Master
    report: PauseReport = Field(
        serialization_alias="validation", description="Every pause measured in the master."
    )
    manifest: str = Field(exclude=True, description="Where this is kept: longform/manifest.json.")

    @computed_field(description="Each clause's text, start and end in the master, and the pause after it.")
    @property
    def segments(self) -> list[TimedSegment]:
        return self.master.sheet.segments


def clause_spec(segment: Segment, speech: Pick, voice: str | None) -> AssetSpec:
    """What to ask the speech provider for: the clause's words only, so the same words in the same voice are
    spoken once, whichever script or pause they come with."""
    return AssetSpec(
        kind=AssetKind.speech, provider=speech.name, model=speech.model, prompt=segment.text, voice=voice
    )
