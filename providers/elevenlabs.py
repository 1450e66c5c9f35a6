"""ElevenLabs speech through the official `elevenlabs` SDK: a voice-over with its word timings, or several voices'
lines as one recording (text-to-dialogue, Eleven v3). The models, options and prices are in providers/elevenlabs.toml;
the wire is ../shared/providers/elevenlabs.md.

Why the SDK, and how it is kept to one paid call: the Fern-built client takes a base URL, a key and an httpx client,
so the base points it at the simulator or the vendor like any other; it would repeat a request after a 429, 408,
409 or 5xx twice by itself (a second synthesis, billed), so every call carries `max_retries=0` (`ONCE`). Its errors
are `ApiError(status_code, headers, body)` without an httpx response: `map_error` rebuilds one so the base's
mapping (and Retry-After) reads them as any vendor's. An answer that is not JSON is an ApiError with the 2xx status.

The calls: `POST /v1/text-to-speech/{voice_id}/with-timestamps`, or `POST /v1/text-to-dialogue/with-timestamps` for
a spec whose options carry `dialogue` (a JSON list of `{"voice", "text"}`; the card offers it on Eleven v3 only).
Both answer base64 audio and one timing per character of the text (`alignment`, the text as written, preferred over
the normalised one so captions show the words the script has). Characters become the caption words local speech
makes (providers.local.speech.caption_words: split at spaces and dashes, quotes dropped, a clause mark kept), each
from its first character's start to its last one's end; in a dialogue each line's characters (its voice segment)
are split on their own, since ElevenLabs may join the lines without a space between them.

Voices: a premade voice by name (the ones elevenlabs.md names, any case), else a voice id as given; none given is
George, the voice of ElevenLabs' own SDK examples. Anything that cannot be an id (a slash, a dash: `en-us` is a
local voice) is refused before any request, as is a text longer than the model takes (help.elevenlabs.io, via
elevenlabs.md; Eleven v3's ~5 000 is approximate) and a dialogue past the SDK's documented 10 voices and 2 000
characters. Audio is MP3 at 44.1 kHz and 128 kbps unless `output_format` says otherwise: ElevenLabs' default, made
on every plan, a tenth the size of WAV, and what a reel's mixer reads; WAV is offered for plans that have it. Raw
PCM, μ-law and Opus are not offered: they carry no header a player (or ffmpeg's probe) could read.

Errors: the body is `{"detail": {"status", "message"}}` (or FastAPI's 422 list). `quota_exceeded` is an empty
account whatever its status (400 or 401, elevenlabs.md), `max_character_limit_exceeded` and `voice_not_found` are
invalid input; 429 (`too_many_concurrent_requests` or `system_busy`) is rate_limited with Retry-After when sent.
ElevenLabs documents no content refusal for speech, so nothing here is mapped to moderation.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

import elevenlabs
import httpx
from elevenlabs.core.api_error import ApiError
from elevenlabs.core.request_options import RequestOptions

from cutroom.assets import AssetSpec, WordTiming
from cutroom.capabilities import Capability
from providers.cards import ModelCard
from providers.errors import ErrorKind, ProviderError
from providers.local.speech import caption_words
from providers.protocol import Output
from providers.vendor import VendorAdapter

NAME = "elevenlabs"
#: ElevenLabs' premade voices that elevenlabs.md names; any other voice is given by its id.
VOICES = {"rachel": "21m00Tcm4TlvDq8ikWAM", "george": "JBFqnCBsd6RMkjVDRZzb"}
DEFAULT_VOICE = "george"
#: What a voice id can be: it goes into the URL path, so nothing else gets there.
VOICE_ID = re.compile(r"^[A-Za-z0-9]{8,64}$")
#: Characters one request may carry, per model (help.elevenlabs.io via elevenlabs.md; v3's is approximate).
MAX_CHARACTERS = {
    "eleven_multilingual_v2": 10_000,
    "eleven_turbo_v2_5": 40_000,
    "eleven_flash_v2_5": 40_000,
    "eleven_v3": 5_000,
}
#: "The maximum number of unique voice IDs is 10"; "keep the total character count across all inputs at or below
#: 2,000 characters … longer requests can … return a validation error" (the SDK's text-to-dialogue docstring).
MAX_DIALOGUE_VOICES = 10
MAX_DIALOGUE_CHARACTERS = 2_000
MAX_SEED = 4_294_967_295
#: Eleven v3's stability settings: Creative, Natural, Robust.
V3_STABILITIES = (0.0, 0.5, 1.0)
#: Each call is the paid synthesis: the SDK must not send it again.
ONCE = RequestOptions(max_retries=0)
MIME = {"mp3": "audio/mpeg", "wav": "audio/wav"}


@dataclass(frozen=True)
class Line:
    """One line of a dialogue: who says it, and what."""

    voice_id: str
    text: str


def voice_id(voice: str | None) -> str:
    """The voice id of a premade voice's name (any case) or of an id as given; George when none is given."""
    wanted = (voice or DEFAULT_VOICE).strip()
    found = VOICES.get(wanted.lower(), wanted)
    if not VOICE_ID.fullmatch(found):
        raise ProviderError(
            ErrorKind.invalid_input,
            f"{wanted[:40]!r} is no ElevenLabs voice: name one of {', '.join(v.title() for v in VOICES)} or give "
            "a voice id (20 letters and digits, from `GET /v1/voices` or the voice library)",
            provider=NAME,
        )
    return found


def dialogue(spec: AssetSpec, card: ModelCard) -> list[Line] | None:
    """The spec's dialogue lines (None when it is one voice), each voice resolved; a malformed list is refused."""
    raw = card.settings(spec).get("dialogue")
    if raw is None:
        return None
    try:
        items = json.loads(str(raw))
    except ValueError:
        items = None
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise ProviderError(
            ErrorKind.invalid_input,
            'option dialogue must be a JSON list of {"voice": …, "text": …}, one per line',
            provider=NAME,
        )
    lines = []
    for number, item in enumerate(items, 1):
        text, voice = item.get("text"), item.get("voice", spec.voice)
        if not isinstance(text, str) or not text.strip():
            raise ProviderError(
                ErrorKind.invalid_input, f"dialogue line {number} has no text to say", provider=NAME
            )
        if not isinstance(voice, str | None):
            raise ProviderError(
                ErrorKind.invalid_input, f"dialogue line {number}'s voice is not a name or id", provider=NAME
            )
        lines.append(Line(voice_id(voice), text))
    return lines


def spoken_words(
    characters: list[str],
    starts: list[float],
    ends: list[float],
    segments: list[tuple[int, int]] | None = None,
) -> list[WordTiming]:
    """Caption words from ElevenLabs' character timings; `segments` (a dialogue's lines, as character index ranges,
    end excluded) are split each on its own."""
    if not len(characters) == len(starts) == len(ends):
        raise ProviderError(
            ErrorKind.generation_failed,
            "the character timings do not line up with the characters",
            provider=NAME,
        )
    words = []
    for first, last in segments or [(0, len(characters))]:
        text, owner = "", []  # owner: the alignment entry each character of `text` came from
        for index in range(max(0, first), min(last, len(characters))):
            text += characters[index]
            owner += [index] * len(characters[index])
        for a, b in caption_words(text):
            word = WordTiming(word=text[a:b], start_s=starts[owner[a]], end_s=ends[owner[b - 1]])
            words.append(word)
    return words


class ElevenLabsSpeech(VendorAdapter):
    vendor_name = NAME
    capability = Capability.speech
    sync = True

    def make_client(self) -> elevenlabs.ElevenLabs:
        return elevenlabs.ElevenLabs(
            api_key=self.api_key, base_url=self.base_url, httpx_client=self._http, timeout=self.timeout
        )

    def check_request(self, spec: AssetSpec, card: ModelCard) -> None:
        lines = dialogue(spec, card)
        text = "".join(line.text for line in lines) if lines else spec.prompt
        if not text.strip():
            raise ProviderError(ErrorKind.invalid_input, "the voice-over text is empty", provider=NAME)
        limit = MAX_CHARACTERS.get(card.model)
        if limit and len(text) > limit:
            raise ProviderError(
                ErrorKind.invalid_input,
                f"{card.model} speaks up to {limit:,} characters a request; this text has {len(text):,}: split it "
                f"or use {'eleven_flash_v2_5' if limit < 40_000 else 'several requests'}",
                provider=NAME,
            )
        if lines is None:
            voice_id(spec.voice)
        elif len({line.voice_id for line in lines}) > MAX_DIALOGUE_VOICES:
            raise ProviderError(
                ErrorKind.invalid_input, f"a dialogue takes up to {MAX_DIALOGUE_VOICES} voices", provider=NAME
            )
        elif len(text) > MAX_DIALOGUE_CHARACTERS:
            raise ProviderError(
                ErrorKind.invalid_input,
                f"a dialogue takes up to {MAX_DIALOGUE_CHARACTERS:,} characters in all; this one has "
                f"{len(text):,}: split it into scenes",
                provider=NAME,
            )
        stability = card.settings(spec).get("stability")
        if card.model == "eleven_v3" and stability is not None and stability not in V3_STABILITIES:
            raise ProviderError(
                ErrorKind.invalid_input,
                f"eleven_v3 takes stability 0 (Creative), 0.5 (Natural) or 1 (Robust), not {stability}",
                provider=NAME,
            )

    def generate(self, spec: AssetSpec, card: ModelCard) -> Output:
        settings = card.settings(spec)
        fmt = str(settings["output_format"])
        common: dict[str, Any] = {
            "model_id": card.vendor_id or card.model,
            "output_format": fmt,
            "seed": spec.seed % (MAX_SEED + 1),
            "request_options": ONCE,
        }
        if "language_code" in settings:
            common["language_code"] = settings["language_code"]
        lines = dialogue(spec, card)
        if lines is None:
            voice = {k: settings[k] for k in ("stability", "similarity_boost", "speed") if k in settings}
            answer = self.client.text_to_speech.convert_with_timestamps(
                voice_id(spec.voice),
                text=spec.prompt,
                **common,
                **({"voice_settings": elevenlabs.VoiceSettings(**voice)} if voice else {}),
            )
            segments = None
        else:
            voice = {"stability": settings["stability"]} if "stability" in settings else {}
            answer = self.client.text_to_dialogue.convert_with_timestamps(
                inputs=[elevenlabs.DialogueInput(text=line.text, voice_id=line.voice_id) for line in lines],
                **common,
                **({"settings": elevenlabs.ToDialogueSettingsResponseModel(**voice)} if voice else {}),
            )
            segments = [(s.character_start_index, s.character_end_index) for s in answer.voice_segments or []]
        output = self.described(_audio(getattr(answer, "audio_base_64", None)), MIME[fmt.split("_")[0]])
        alignment = answer.alignment
        if alignment is None:  # the audio is there, the timings are not: captions cannot follow it
            raise ProviderError(
                ErrorKind.generation_failed, "the answer has no character timings", provider=NAME
            )
        words = spoken_words(
            alignment.characters,
            alignment.character_start_times_seconds,
            alignment.character_end_times_seconds,
            segments,
        )
        return output.model_copy(update={"words": words})

    def map_error(self, exc: Exception, what: str) -> ProviderError | None:
        if isinstance(exc, ApiError) and exc.status_code is not None:
            if exc.status_code < 400:
                return ProviderError(ErrorKind.generation_failed, f"{what}: unreadable answer", provider=NAME)
            body = exc.body if isinstance(exc.body, dict | list) else None
            response = httpx.Response(
                exc.status_code,
                headers=exc.headers or {},
                **({"json": body} if body is not None else {"text": str(exc.body or "")}),
            )
            return self.from_response(response, what)
        return super().map_error(exc, what)

    def error_detail(self, body: Any, response: httpx.Response) -> str:
        """`status: message` of ElevenLabs' `{"detail": {"status", "message"}}`; other shapes as the base reads them."""
        detail = body.get("detail") if isinstance(body, dict) else None
        if isinstance(detail, dict) and detail.get("status"):
            return f"{detail['status']}: {detail.get('message', '')}"
        return super().error_detail(body, response)

    def error_kind(self, status: int, detail: str, body: Any) -> ErrorKind | None:
        if detail.split(":", 1)[0] == "quota_exceeded" or status == 402:
            return ErrorKind.insufficient_credits
        return None  # 400 and 422 are invalid input, 401 a refused key, 429 a full queue, 5xx passing


def _audio(encoded: Any) -> bytes:
    """The answer's audio; a missing or broken one is a failed synthesis (tried again), not a bug."""
    try:
        data = base64.b64decode(encoded, validate=True) if isinstance(encoded, str) else b""
    except (binascii.Error, ValueError):
        data = b""
    if not data:
        raise ProviderError(ErrorKind.generation_failed, "the answer carries no audio", provider=NAME)
    return data
