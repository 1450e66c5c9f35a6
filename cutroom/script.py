"""A scene script, as the studio's writers paste it: scenes of B-roll visuals, spoken lines and a presenter.

The format:
    [Scene 1 – Introduction]
    Visual: Professional setting
    Dialogue (VO): "Welcome to our platform"
    Dialogue (Maya): "And I'm Maya."
    Talking photo: Monica_inSleeveless_20220819
    Scene 1 heygen id: "optional_existing_asset_id"

    [Scene 2 – Maya]
    Dialogue (Maya): "Let me show you."
    Portrait: photos/maya.jpg

- a header names the scene: `[Scene 1 – Title]`, `[Scene_2 - Title]`, `[Scene-3: Title]`, `[4 — Title]`, `[Scene 5]`;
  its id (`1`, `2b`, `intro_2`) is unique in the script;
- `Visual:` lines are the B-roll prompts of a scene without a presenter;
- `Dialogue (Speaker):` lines are spoken in order, each speaker in their own voice (`Dialogue:` alone is the VO);
- `Talking photo:` puts a presenter on screen speaking the scene's lines: a talking photo id, optionally after
  the avatar provider that knows it (`heygen:Monica_…`);
- `Portrait:` puts a presenter on screen from a photo instead (HeyGen's Avatar IV animates it): an image file, its
  path from the script's folder; a scene has one presenter, a talking photo or a portrait;
- `Scene N heygen id:` names a media asset the avatar vendor already holds for the scene.

Every error names its line and quotes little of it; nothing is paid for until the whole script reads.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from cutroom.assets import Asset, AssetKind, AssetSpec, InputRef, OptionValue, Style, WordTiming
from cutroom.boundary import quote
from cutroom.channels import SIZES, Aspect
from cutroom.ledger import LedgerSummary
from cutroom.lineup import Pick
from cutroom.longform import ScriptError, script_lines
from cutroom.manifest import CampaignStatus
from cutroom.specs import CLIP_FPS, story_seed

NARRATOR = "VO"
#: A spoken line stays well inside every speech vendor's request limit (ElevenLabs takes 5,000 characters).
MAX_LINE_CHARS = 1000
MAX_VISUAL_CHARS = 500
MAX_PATH_CHARS = 300
MAX_SCENES = 100
#: How long the B-roll of a scene with nothing to say runs.
BROLL_SILENT_S = 5.0

_QUOTES = "\"'“”‘’«»„"
_ID = r"[A-Za-z0-9]+(?:_[A-Za-z0-9]+)*"
_HEADER = re.compile(
    rf"\[\s*(?:scene[\s_–—-]*)?(?P<id>{_ID})\s*(?:[-–—:|]\s*(?P<title>[^\]]*?))?\s*\]", re.IGNORECASE
)
_DIALOGUE = re.compile(
    r"dialogue\s*(?:\(\s*(?P<speaker>[^()]{0,41}?)\s*\))?\s*:\s*(?P<text>.*)", re.IGNORECASE
)
_SPEAKER = re.compile(r"[\w][\w .'’-]{0,39}")
_VISUAL = re.compile(r"visuals?\s*:\s*(?P<text>.*)", re.IGNORECASE)
_PRESENTER = re.compile(r"talking[\s_-]*photo\s*:\s*(?P<text>.*)", re.IGNORECASE)
_PORTRAIT = re.compile(r"portrait\s*:\s*(?P<text>.*)", re.IGNORECASE)
_ASSET = re.compile(
    rf"(?:scene[\s_–—-]*(?P<id>{_ID})\s+)?heygen[\s_-]*(?:asset[\s_-]*)?id\s*:\s*(?P<text>.*)", re.IGNORECASE
)
#: A talking photo or asset id as vendors give them: letters, digits, `_ - .`; `provider:` ahead of it optional.
_VENDOR_ID = re.compile(r"(?:(?P<provider>[a-z][a-z0-9_-]{0,39}):)?(?P<id>[\w.-]{1,100})")


class Dialogue(BaseModel, frozen=True):
    speaker: str = Field(description="Who says it: VO for the narrator, else the name the script gives.")
    text: str
    line: int


class Scene(BaseModel, frozen=True):
    id: str = Field(description="The scene's id as the header gives it: 1, 2b, intro_2.")
    title: str = ""
    line: int = Field(description="The header's line.")
    visuals: tuple[str, ...] = Field(default=(), description="B-roll prompts, in order.")
    dialogue: tuple[Dialogue, ...] = ()
    talking_photo: str | None = Field(default=None, description="The presenter's talking photo id.")
    avatar_provider: str | None = Field(
        default=None,
        description="The avatar provider the script names for the presenter; None: the lineup's.",
    )
    portrait: str | None = Field(
        default=None, description="The presenter's photo, an image file as the script names it (Avatar IV)."
    )
    presenter_line: int | None = Field(default=None, description="The talking photo's or portrait's line.")
    asset_id: str | None = Field(
        default=None, description="An asset the avatar vendor already holds for this scene (`heygen id:`)."
    )

    @property
    def slug(self) -> str:
        """The scene's folder name: 'scene-1', 'scene-intro_2'."""
        return f"scene-{self.id.lower()}"

    @property
    def spoken(self) -> str:
        return "\n".join(line.text for line in self.dialogue)

    @property
    def speakers(self) -> list[str]:
        return list(dict.fromkeys(line.speaker for line in self.dialogue))

    @property
    def presented(self) -> bool:
        """A presenter speaks the scene (a talking photo or a portrait); else its visuals are its B-roll."""
        return bool(self.talking_photo or self.portrait)

    @property
    def presenter(self) -> str:
        """Who is on screen: the first speaker the script names, else the talking photo."""
        named = [speaker for speaker in self.speakers if speaker != NARRATOR]
        return named[0] if named else (self.talking_photo or NARRATOR)


class SceneScript(BaseModel, frozen=True):
    scenes: tuple[Scene, ...]


def parse_scene_script(script: str) -> SceneScript:
    """The script's scenes, or a ScriptError naming the first line that cannot be read."""
    scenes: list[dict] = []
    seen: dict[str, int] = {}
    for number, line in script_lines(script):
        if header := _HEADER.fullmatch(line):
            key = header["id"].lower()
            if key in seen:
                raise ScriptError(number, f"scene {quote(header['id'], 20)} again; line {seen[key]} has it")
            if len(seen) == MAX_SCENES:
                raise ScriptError(number, f"more than {MAX_SCENES} scenes; split the script")
            seen[key] = number
            if scenes:
                _close(scenes[-1])
            title = (header["title"] or "").strip()[:80]
            scenes.append({"id": header["id"], "title": title, "line": number, "visuals": [], "dialogue": []})
            continue
        if not scenes:
            raise ScriptError(
                number, "this comes before the first scene header; start with [Scene 1 – Title]"
            )
        _read_line(scenes[-1], line, number)
    if not scenes:
        raise ScriptError(1, "the script holds no scene header such as [Scene 1 – Introduction]")
    _close(scenes[-1])
    return SceneScript(scenes=tuple(Scene(**scene) for scene in scenes))


def _read_line(scene: dict, line: str, number: int) -> None:
    if said := _DIALOGUE.fullmatch(line):
        speaker = (said["speaker"] or NARRATOR).strip()
        if not _SPEAKER.fullmatch(speaker):
            raise ScriptError(number, f"speaker {quote(speaker, 40)} is no name (letters, at most 40)")
        words = _unquoted(said["text"], number, "dialogue", MAX_LINE_CHARS)
        scene["dialogue"].append(Dialogue(speaker=speaker, text=words, line=number))
    elif visual := _VISUAL.fullmatch(line):
        scene["visuals"].append(_unquoted(visual["text"], number, "visual", MAX_VISUAL_CHARS))
    elif presenter := _PRESENTER.fullmatch(line):
        _one_presenter(scene, number, "talking photo")
        provider, photo = _vendor_id(presenter["text"], number, "talking photo")
        scene.update(talking_photo=photo, avatar_provider=provider, presenter_line=number)
    elif portrait := _PORTRAIT.fullmatch(line):
        _one_presenter(scene, number, "portrait")
        photo = _unquoted(portrait["text"], number, "portrait", MAX_PATH_CHARS)
        scene.update(portrait=photo, presenter_line=number)
    elif asset := _ASSET.fullmatch(line):
        if asset["id"] and asset["id"].lower() != scene["id"].lower():
            raise ScriptError(
                number,
                f"this heygen id names scene {quote(asset['id'], 20)} inside scene {quote(scene['id'], 20)}",
            )
        if scene.get("asset_id"):
            raise ScriptError(number, f"a second heygen id for scene {quote(scene['id'], 20)}")
        provider, scene["asset_id"] = _vendor_id(asset["text"], number, "heygen id")
        if provider:
            raise ScriptError(number, f"a heygen id is the asset's id alone, not {quote(asset['text'], 40)}")
    else:
        raise ScriptError(
            number,
            f"{quote(line, 40)} is no line a scene holds: use Visual:, Dialogue (Speaker):, Talking photo:, "
            "Portrait: or Scene N heygen id:",
        )


def _one_presenter(scene: dict, number: int, what: str) -> None:
    """A scene is presented by one talking photo or one portrait: a second presenter line is a slip."""
    if had := _presenter_kind(scene):
        raise ScriptError(
            number,
            f"a {what} for scene {quote(scene['id'], 20)}, which has its {had} on line {scene['presenter_line']}: "
            "a scene has one presenter",
        )


def _presenter_kind(scene: dict) -> str | None:
    return "talking photo" if scene.get("talking_photo") else "portrait" if scene.get("portrait") else None


def _unquoted(value: str, number: int, what: str, limit: int) -> str:
    words = value.strip().strip(_QUOTES).strip()
    if not words:
        raise ScriptError(number, f"the {what} is empty")
    if len(words) > limit:
        raise ScriptError(number, f"a {what} of {len(words)} characters; at most {limit}, so split it")
    return words


def _vendor_id(value: str, number: int, what: str) -> tuple[str | None, str]:
    bare = value.strip().strip(_QUOTES).strip()
    found = _VENDOR_ID.fullmatch(bare)
    if found is None:
        raise ScriptError(
            number,
            f"{what} {quote(bare, 40)} is no id (letters, digits, _ - . only; `provider:` ahead optional)",
        )
    return found["provider"], found["id"]


def _close(scene: dict) -> None:
    """A scene must have something to show or say; a presenter needs words to speak."""
    where = f"scene {quote(scene['id'], 20)}"
    presenter = _presenter_kind(scene)
    if not scene["dialogue"] and not scene["visuals"]:
        raise ScriptError(scene["line"], f"{where} has no Dialogue and no Visual line")
    if presenter and not scene["dialogue"]:
        raise ScriptError(
            scene["presenter_line"], f"{where} has a {presenter} but no Dialogue for it to speak"
        )
    if scene.get("asset_id") and not presenter:
        raise ScriptError(
            scene["line"], f"{where} has a heygen id but no Talking photo or Portrait line to use it"
        )


# --- what a script run made ---------------------------------------------------------------------------------


class SceneStatus(StrEnum):
    complete = "complete"
    failed = "failed"


class SceneVoice(BaseModel):
    """A scene's whole voice as one stored file: its lines in order, with every word's time in it."""

    uri: str
    sha256: str
    duration_s: float
    words: list[WordTiming] = Field(default_factory=list)


class SceneResult(BaseModel):
    id: str
    title: str = ""
    status: SceneStatus
    step: str | None = Field(
        default=None, description="The step that failed: speech, avatar, keyframe, b-roll …"
    )
    error: str | None = Field(
        default=None, description="Why it failed, in the vendor's words where it gave them."
    )
    audio: str | None = Field(default=None, description="The scene's voice.")
    video: str | None = Field(default=None, description="The scene's video: its picture, voice and captions.")
    words: list[WordTiming] = Field(default_factory=list, description="Word timings of the voice.")
    clips: list[str] = Field(
        default_factory=list, description="The scene's picture in order: presenter or B-roll."
    )
    assets: list[Asset] = Field(default_factory=list, description="Everything generated for the scene.")


class ScriptManifest(BaseModel):
    """campaigns/{id}/script/manifest.json: per scene what was made or why not, and the stitched cut."""

    campaign_id: str
    status: CampaignStatus
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    run_id: str | None = None
    scenes: list[SceneResult]
    video: str | None = Field(default=None, description="Every completed scene stitched, captioned.")
    video_error: str | None = Field(default=None, description="Why the stitched cut could not be made.")
    ledger: LedgerSummary
    lineup: dict[str, str] = Field(default_factory=dict, description="capability → 'provider:model'.")


# --- what to ask each provider for -------------------------------------------------------------------------


def line_spec(line: Dialogue, speech: Pick, voices: dict[str, str]) -> AssetSpec:
    """One spoken line: the same words in the same voice are spoken (and paid for) once, in any scene."""
    return AssetSpec(
        kind=AssetKind.speech,
        provider=speech.name,
        model=speech.model,
        prompt=line.text,
        voice=voices.get(line.speaker),
    )


def dialogue_spec(scene: Scene, speech: Pick, voices: dict[str, str]) -> AssetSpec:
    """A scene's lines as one multi-voice request, for a speech model that takes a `dialogue` option."""
    turns = [
        {"text": line.text, **({"voice": voices[line.speaker]} if line.speaker in voices else {})}
        for line in scene.dialogue
    ]
    return AssetSpec(
        kind=AssetKind.speech,
        provider=speech.name,
        model=speech.model,
        prompt=scene.spoken,
        options={"dialogue": json.dumps(turns, ensure_ascii=False)},
    )


def avatar_spec(
    scene: Scene,
    avatar: Pick,
    voice: SceneVoice,
    style: Style,
    aspect: Aspect,
    portrait: InputRef | None = None,
) -> AssetSpec:
    """The presenter speaking the scene's voice: its talking photo, or its `portrait` (the image the script's
    Portrait: line names, checked); the style's headline is the speaker a stand-in card names."""
    width, height = SIZES[aspect]
    options: dict[str, OptionValue] = {}
    if scene.talking_photo:
        options["talking_photo_id"] = scene.talking_photo
    if scene.asset_id:
        options["asset_id"] = scene.asset_id
    return AssetSpec(
        kind=AssetKind.avatar,
        provider=avatar.name,
        model=avatar.model,
        prompt=scene.spoken,
        inputs=(
            InputRef(role="audio", uri=voice.uri, sha256=voice.sha256),
            *([portrait] if portrait else []),
        ),
        aspect=aspect,
        width=width,
        height=height,
        style=style.model_copy(update={"headline": scene.presenter}),
        options=options,
    )


def broll_keyframe_spec(scene: Scene, visual: str, image: Pick, style: Style, aspect: Aspect) -> AssetSpec:
    """A clean still of the visual (captions go over the clip made from it)."""
    width, height = SIZES[aspect]
    return AssetSpec(
        kind=AssetKind.image,
        provider=image.name,
        model=image.model,
        prompt=visual,
        aspect=aspect,
        width=width,
        height=height,
        style=style.model_copy(update={"headline": ""}),
        seed=story_seed(scene.slug),
    )


def broll_lengths(voice_s: float | None, visuals: int, durations_s: tuple[float, ...]) -> list[float]:
    """Clip lengths that together cover the voice: a share per visual, each snapped up to a length the model
    makes; when even its longest falls short, more clips are added (the visuals taken again in turn)."""
    total = voice_s or BROLL_SILENT_S
    wanted = total / visuals
    if durations_s:
        fitting = [d for d in durations_s if d >= wanted]
        length = min(fitting) if fitting else max(durations_s)
    else:
        length = round(wanted + 0.05, 2)  # a little over: the clip never ends before the voice
    return [length] * max(visuals, math.ceil(total / length - 1e-6))


def broll_clip_spec(
    visual: str, video: Pick, keyframe: Asset, length_s: float, take: int, aspect: Aspect
) -> AssetSpec:
    width, height = SIZES[aspect]
    role = "keyframe" if "keyframe" in video.inputs or not video.inputs else video.inputs[0]
    return AssetSpec(
        kind=AssetKind.video,
        provider=video.name,
        model=video.model,
        prompt=visual,
        aspect=aspect,
        width=width,
        height=height,
        duration_s=length_s,
        fps=CLIP_FPS,
        inputs=(InputRef(role=role, uri=keyframe.uri, sha256=keyframe.sha256, url=keyframe.source_url),),
        seed=take,
    )
