"""ElevenLabs text-to-speech and text-to-dialogue as the `elevenlabs` 2.78 SDK calls them (../shared/providers/
elevenlabs.md): synchronous, the audio in the answer.

Covered: `POST /v1/text-to-speech/{voice_id}` (the audio's bytes) and `…/with-timestamps` (`{audio_base64,
alignment, normalized_alignment}`), `POST /v1/text-to-dialogue` and `…/with-timestamps` (the same plus
`voice_segments`), `GET /v1/voices`; the key in `xi-api-key`; the `output_format` query (MP3, WAV and raw PCM are
rendered); the body's fields and ranges; each model's character limit (400 `max_character_limit_exceeded`); an
unknown voice (400 `voice_not_found`); `request-id` and `x-character-count` on every answer. The audio is real:
espeak-ng (providers/local/speech.py) speaks the text, a premade voice in a voice of its own, encoded by ffmpeg, and
every character's timing comes from the words espeak said: a word's characters share its span, the spaces and
marks between words the pause between them. A dialogue's lines are spoken one after another, 0.3 s apart.

Errors are `{"detail": {"status", "message"}}`, validation FastAPI's 422 `{"detail": [{loc, msg, type}]}`. The
frame's 429 is `too_many_concurrent_requests` with Retry-After. Outcomes: Fault.failed → 500; Fault.moderation and
Fault.moderation_output do not apply (ElevenLabs documents no content refusal for speech, so none is invented);
Fault.expired neither (the audio is in the answer). `POST {PREFIX}/_sim/quota {"exhausted": true}` makes every
synthesis ElevenLabs' 401 `quota_exceeded`, as an account out of characters.

Unverified (u): the key's shape (`sk_` and 48 letters or digits; old 32-hex keys too), the messages (but
max_character_limit_exceeded's, from the help centre), the status and message of an unknown model or of dialogue on
a model without it, how a dialogue's lines join in `alignment` (here: directly, no space between), latencies.
Not simulated: streaming routes, μ-law, A-law and Opus output (a 422 says so), `normalized_alignment` that differs
from `alignment` (no text normalisation), pronunciation dictionaries, request stitching, plan concurrency queues.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import subprocess
import tempfile
import threading
import uuid
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from cutroom.assets import AssetKind, AssetSpec
from cutroom.media import ffmpeg_exe
from providers.local.speech import LocalSpeech, caption_words
from simulator.core import Fault, Simulator
from simulator.jobs import start_job

VENDOR = "elevenlabs"
PREFIX = "/elevenlabs"
KEY_PATTERN = re.compile(r"^(sk_[A-Za-z0-9]{48}|[0-9a-f]{32})$")
MAX_SEED = 4_294_967_295
#: Pause between a dialogue's lines. (u)
LINE_GAP_S = 0.3


@dataclass(frozen=True)
class Voice:
    name: str
    #: The espeak-ng voice that speaks for it here: each premade voice sounds like itself.
    espeak: str
    gender: str
    accent: str


#: The premade voices elevenlabs.md names.
VOICES = {
    "21m00Tcm4TlvDq8ikWAM": Voice("Rachel", "en-us+f3", "female", "american"),
    "JBFqnCBsd6RMkjVDRZzb": Voice("George", "en-gb+m3", "male", "british"),
}


@dataclass(frozen=True)
class Model:
    max_characters: int
    latency_s: float  # (u)
    dialogue: bool = False


MODELS = {
    "eleven_multilingual_v2": Model(10_000, 1.5),
    "eleven_multilingual_v1": Model(10_000, 1.5),
    "eleven_monolingual_v1": Model(10_000, 1.0),
    "eleven_turbo_v2": Model(30_000, 0.5),
    "eleven_flash_v2": Model(30_000, 0.3),
    "eleven_turbo_v2_5": Model(40_000, 0.5),
    "eleven_flash_v2_5": Model(40_000, 0.3),
    "eleven_v3": Model(5_000, 2.5, dialogue=True),
}
#: The output_format enum; the codecs in RENDERED are made, the rest refused as not simulated.
FORMATS = (
    "mp3_22050_32", "mp3_24000_48", "mp3_44100_32", "mp3_44100_64", "mp3_44100_96", "mp3_44100_128",
    "mp3_44100_192", "pcm_8000", "pcm_16000", "pcm_22050", "pcm_24000", "pcm_32000", "pcm_44100", "pcm_48000",
    "wav_8000", "wav_16000", "wav_22050", "wav_24000", "wav_32000", "wav_44100", "wav_48000", "ulaw_8000",
    "alaw_8000", "opus_48000_32", "opus_48000_64", "opus_48000_96", "opus_48000_128", "opus_48000_192",
)  # fmt: skip
RENDERED = {"mp3": "audio/mpeg", "wav": "audio/wav", "pcm": "audio/pcm"}
#: Voice settings and their ranges.
SETTINGS = {"stability": (0.0, 1.0), "similarity_boost": (0.0, 1.0), "style": (0.0, 1.0), "speed": (0.7, 1.2)}
ERROR_STATUS = {429: "too_many_concurrent_requests", 500: "internal_server_error", 503: "service_unavailable",
                504: "gateway_timeout"}  # fmt: skip


def error_response(status: int, message: str, retry_after: float | None = None) -> Response:
    """ElevenLabs' `{"detail": {"status", "message"}}`, Retry-After on a 429 when the frame gives one."""
    headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None and status == 429 else {}
    return refusal(status, ERROR_STATUS.get(status, "error"), message, headers)


def refusal(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(
        {"detail": {"status": code, "message": message}}, status_code=status, headers=headers or {}
    )


def invalid(*problems: tuple[tuple[str | int, ...], str, str]) -> Response:
    """FastAPI's 422: one `{loc, msg, type}` per problem."""
    detail = [{"loc": list(loc), "msg": msg, "type": kind} for loc, msg, kind in problems]
    return JSONResponse({"detail": detail}, status_code=422)


@dataclass(frozen=True)
class Spoken:
    """A rendering: 16-bit mono samples, and each character's start and end."""

    pcm: np.ndarray
    rate: int
    characters: list[str]
    starts: list[float]
    ends: list[float]

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / self.rate


def speak(text: str, voice: Voice, seed: int) -> Spoken:
    """espeak-ng saying the text, with every character timed from the words it said."""
    spans = caption_words(text)
    if spans:
        spec = AssetSpec(kind=AssetKind.speech, provider=VENDOR, model="espeak-ng", prompt=text, voice=voice.espeak,
                         seed=seed)  # fmt: skip
        made = LocalSpeech().render(spec)
        with wave.open(io.BytesIO(made.data)) as audio:
            rate = audio.getframerate()
            pcm = np.frombuffer(audio.readframes(audio.getnframes()), "<i2")
        words = [(w.start_s, w.end_s) for w in made.words]
    else:  # nothing to say: a short silence
        rate, pcm, words = 22_050, np.zeros(11_025, "<i2"), []
    if len(words) != len(spans):  # espeak timed the words otherwise: spread them evenly
        step = len(pcm) / rate / max(1, len(spans))
        words = [(k * step, (k + 1) * step) for k in range(len(spans))]
    starts, ends = [0.0] * len(text), [0.0] * len(text)
    cursor, said = 0, 0.0
    for (first, last), (start, end) in zip(spans, words, strict=True):
        for i in range(cursor, first):  # the gap before the word holds the pause
            starts[i], ends[i] = said, start
        share = (end - start) / (last - first)
        for k, i in enumerate(range(first, last)):
            starts[i], ends[i] = start + k * share, start + (k + 1) * share
        cursor, said = last, end
    for i in range(cursor, len(text)):
        starts[i], ends[i] = said, len(pcm) / rate
    return Spoken(pcm, rate, list(text), starts, ends)


def joined(lines: list[Spoken]) -> tuple[Spoken, list[tuple[float, float, int, int]]]:
    """Lines one after another with a pause between them, and each line's (start s, end s, first char, end char)."""
    rate = lines[0].rate
    gap = np.zeros(int(LINE_GAP_S * rate), "<i2")
    pcm, characters, starts, ends, segments = [], [], [], [], []
    offset = 0.0
    for number, line in enumerate(lines):
        if number:
            pcm.append(gap)
            offset += LINE_GAP_S
        segments.append(
            (offset, offset + line.duration_s, len(characters), len(characters) + len(line.characters))
        )
        pcm.append(line.pcm)
        characters += line.characters
        starts += [offset + s for s in line.starts]
        ends += [offset + e for e in line.ends]
        offset += line.duration_s
    return Spoken(np.concatenate(pcm), rate, characters, starts, ends), segments


def encoded(spoken: Spoken, output_format: str) -> bytes:
    """The samples in the asked format: MP3 at its rate and bitrate, WAV, or headerless PCM, by ffmpeg."""
    codec, rate, *bitrate = output_format.split("_")
    args = {"mp3": ["-c:a", "libmp3lame", "-b:a", f"{bitrate[0] if bitrate else 128}k", "-f", "mp3"],
            "wav": ["-c:a", "pcm_s16le", "-f", "wav"], "pcm": ["-f", "s16le"]}[codec]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="cutroom-sim-voice-") as folder:
        target = (
            Path(folder) / f"voice.{codec}"
        )  # a file, not a pipe: MP3 and WAV headers are written at the end
        command = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "s16le",
                   "-ar", str(spoken.rate), "-ac", "1", "-i", "pipe:0", "-ar", rate, "-ac", "1", *args, str(target)]  # fmt: skip
        subprocess.run(command, input=spoken.pcm.astype("<i2").tobytes(), capture_output=True, check=True)
        return target.read_bytes()


@dataclass
class Account:
    quota_exhausted: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


def _authorised(request: Request) -> Response | None:
    key = request.headers.get("xi-api-key")
    if not key:
        return refusal(401, "needs_authorization", "Neither authorization header nor xi-api-key received, please provide one.")  # fmt: skip
    if not KEY_PATTERN.match(key):
        return refusal(401, "invalid_api_key", "Invalid API key")
    return None


async def _json(request: Request) -> dict[str, Any] | Response:
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        return invalid((("body",), "JSON decode error", "json_invalid"))
    if not isinstance(body, dict):
        return invalid((("body",), "Input should be a valid dictionary", "dict_type"))
    return body


def _common_problems(request: Request, body: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str, str]]:
    problems: list[tuple[tuple[str | int, ...], str, str]] = []
    fmt = request.query_params.get("output_format", "mp3_44100_128")
    if fmt not in FORMATS:
        problems.append((("query", "output_format"), f"Input should be one of {', '.join(FORMATS)}", "enum"))
    elif fmt.split("_")[0] not in RENDERED:
        problems.append((("query", "output_format"), f"{fmt} is not simulated", "enum"))
    seed = body.get("seed")
    if seed is not None and (not isinstance(seed, int) or not 0 <= seed <= MAX_SEED):
        problems.append(
            (("body", "seed"), f"Input should be an integer between 0 and {MAX_SEED}", "int_type")
        )
    if not isinstance(body.get("model_id", ""), str):
        problems.append((("body", "model_id"), "Input should be a valid string", "string_type"))
    return problems


def _settings_problems(settings: Any, where: str, v3: bool) -> list[tuple[tuple[str | int, ...], str, str]]:
    if settings is None:
        return []
    if not isinstance(settings, dict):
        return [(("body", where), "Input should be a valid dictionary", "dict_type")]
    problems = []
    for name, (low, high) in SETTINGS.items():
        value = settings.get(name)
        if value is not None and (not isinstance(value, int | float) or not low <= value <= high):
            problems.append((("body", where, name), f"Input should be between {low} and {high}", "range"))
    if v3 and settings.get("stability") not in (None, 0, 0.5, 1):
        problems.append(
            (("body", where, "stability"), "eleven_v3 takes stability 0.0, 0.5 or 1.0", "value_error")
        )
    return problems


def router(sim: Simulator) -> APIRouter:
    api = APIRouter()
    account = Account()
    sim.keeps_fresh(account, Account)  # a reset fills the account again

    async def answer(
        request: Request,
        model_id: str,
        lines: list[tuple[str, Voice]],
        seed: int,
        timestamps: bool,
        dialogue: bool,
    ) -> Response:
        """Check the account, take the job, speak, and answer in the route's shape."""
        model = MODELS[model_id]
        characters = sum(len(text) for text, _ in lines)
        if characters > model.max_characters:
            return refusal(400, "max_character_limit_exceeded",
                           f"This request's text has {characters} characters and exceeds the character limit of "
                           f"{model.max_characters} characters.")  # fmt: skip
        with account.lock:
            if account.quota_exhausted:
                return refusal(401, "quota_exceeded",
                               f"This request exceeds your quota limit. You have 0 credits remaining, while "
                               f"{characters} credits are required for this request.")  # fmt: skip
        fmt = request.query_params.get("output_format", "mp3_44100_128")
        job = start_job(sim, VENDOR, model.latency_s + characters / 1000, {"model_id": model_id, "lines": len(lines)},
                        faults=(Fault.failed,))  # fmt: skip
        await asyncio.sleep(job.latency)
        if job.fault is Fault.failed:
            return error_response(500, "An internal server error occurred.")

        def render() -> tuple[bytes, Spoken, list[tuple[float, float, int, int]]]:
            spoken, segments = joined([speak(text, voice, seed) for text, voice in lines])
            return encoded(spoken, fmt), spoken, segments

        shape = (VENDOR, model_id, fmt, seed, tuple((text, voice.name) for text, voice in lines))
        audio, spoken, segments = await run_in_threadpool(sim.media, shape, render)
        headers = {"request-id": uuid.uuid4().hex, "x-character-count": str(characters)}
        if not timestamps:
            return Response(audio, media_type=RENDERED[fmt.split("_")[0]], headers=headers)
        alignment = {"characters": spoken.characters, "character_start_times_seconds": spoken.starts,
                     "character_end_times_seconds": spoken.ends}  # fmt: skip
        body: dict[str, Any] = {"audio_base64": base64.b64encode(audio).decode("ascii"), "alignment": alignment,
                                "normalized_alignment": alignment}  # fmt: skip
        if dialogue:
            ids = {voice.name: vid for vid, voice in VOICES.items()}
            body["voice_segments"] = [
                {"voice_id": ids[voice.name], "start_time_seconds": start, "end_time_seconds": end,
                 "character_start_index": first, "character_end_index": last, "dialogue_input_index": index}
                for index, ((start, end, first, last), (_, voice)) in enumerate(zip(segments, lines, strict=True))
            ]  # fmt: skip
        return JSONResponse(body, headers=headers)

    async def text_to_speech(voice_id: str, request: Request, timestamps: bool) -> Response:
        if (refused := _authorised(request)) is not None:
            return refused
        body = await _json(request)
        if isinstance(body, Response):
            return body
        text, model_id = body.get("text"), body.get("model_id", "eleven_multilingual_v2")
        problems = _common_problems(request, body)
        if not isinstance(text, str):
            problems.append((("body", "text"), "Field required" if text is None else "Input should be a valid string",
                             "missing" if text is None else "string_type"))  # fmt: skip
        problems += _settings_problems(body.get("voice_settings"), "voice_settings", model_id == "eleven_v3")
        if problems:
            return invalid(*problems)
        if model_id not in MODELS:
            return refusal(400, "model_not_found", f"A model with model ID {model_id} does not exist.")
        if voice_id not in VOICES:
            return refusal(400, "voice_not_found", f"A voice with voice_id {voice_id} was not found.")
        return await answer(
            request, model_id, [(text, VOICES[voice_id])], body.get("seed") or 0, timestamps, False
        )

    async def text_to_dialogue(request: Request, timestamps: bool) -> Response:
        if (refused := _authorised(request)) is not None:
            return refused
        body = await _json(request)
        if isinstance(body, Response):
            return body
        inputs, model_id = body.get("inputs"), body.get("model_id", "eleven_v3")
        problems = _common_problems(request, body)
        if not isinstance(inputs, list) or not inputs:
            problems.append((("body", "inputs"), "Field required" if inputs is None else "List should have at least 1 item",
                             "missing" if inputs is None else "too_short"))  # fmt: skip
            inputs = []
        for index, line in enumerate(inputs):
            for name in ("text", "voice_id"):
                if not isinstance(line, dict) or not isinstance(line.get(name), str):
                    problems.append((("body", "inputs", index, name), "Field required", "missing"))
        problems += _settings_problems(body.get("settings"), "settings", True)
        if problems:
            return invalid(*problems)
        if model_id not in MODELS:
            return refusal(400, "model_not_found", f"A model with model ID {model_id} does not exist.")
        if not MODELS[model_id].dialogue:
            return refusal(400, "unsupported_model", f"Model {model_id} does not support text to dialogue.")
        if len({line["voice_id"] for line in inputs}) > 10:
            return refusal(400, "too_many_voices", "A dialogue can have at most 10 unique voices.")
        missing = next((line["voice_id"] for line in inputs if line["voice_id"] not in VOICES), None)
        if missing is not None:
            return refusal(400, "voice_not_found", f"A voice with voice_id {missing} was not found.")
        lines = [(line["text"], VOICES[line["voice_id"]]) for line in inputs]
        return await answer(request, model_id, lines, body.get("seed") or 0, timestamps, True)

    @api.post("/v1/text-to-speech/{voice_id}")
    async def speech(voice_id: str, request: Request) -> Response:
        return await text_to_speech(voice_id, request, timestamps=False)

    @api.post("/v1/text-to-speech/{voice_id}/with-timestamps")
    async def speech_with_timestamps(voice_id: str, request: Request) -> Response:
        return await text_to_speech(voice_id, request, timestamps=True)

    @api.post("/v1/text-to-dialogue")
    async def dialogue(request: Request) -> Response:
        return await text_to_dialogue(request, timestamps=False)

    @api.post("/v1/text-to-dialogue/with-timestamps")
    async def dialogue_with_timestamps(request: Request) -> Response:
        return await text_to_dialogue(request, timestamps=True)

    @api.get("/v1/voices")
    async def voices(request: Request) -> Response:
        if (refused := _authorised(request)) is not None:
            return refused
        listed = [{"voice_id": vid, "name": v.name, "category": "premade",
                   "labels": {"gender": v.gender, "accent": v.accent}} for vid, v in VOICES.items()]  # fmt: skip
        return JSONResponse({"voices": listed})

    @api.get("/_sim/quota")
    async def get_quota() -> dict[str, bool]:
        return {"exhausted": account.quota_exhausted}

    @api.post("/_sim/quota")
    async def set_quota(changes: dict[str, Any]) -> dict[str, bool]:
        with account.lock:
            account.quota_exhausted = bool(changes.get("exhausted", account.quota_exhausted))
        return {"exhausted": account.quota_exhausted}

    return api
