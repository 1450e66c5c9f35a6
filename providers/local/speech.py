"""Offline speech: espeak-ng through ctypes, with per-word timings for captions."""

from __future__ import annotations

import _ctypes
import ctypes
import io
import re
import threading
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import espeakng_loader
import numpy as np

from cutroom.assets import AssetSpec, WordTiming
from cutroom.capabilities import Capability
from providers.errors import ErrorKind, ProviderError
from providers.protocol import Output
from providers.sync import SyncGenerator

DEFAULT_VOICE = "en-us"
RATE_WPM = 160  # a calm voice-over pace; espeak's own default (175) sounds hurried

# Constants from espeak-ng's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_PARAM_RATE = 1
_EE_OK = 0
_BUFFER_MS = 500  # longer chunks mean fewer Python callbacks per second of audio

_SILENCE = 64  # |sample| at or below this is silence; espeak pads pauses with exact zeros
_EDGE_PUNCTUATION = "\"'“”‘’«»()[]{}<>.,;:!?¡¿…-–—*_~"
#: Kept at a word's end: captions break phrases after them (the way ElevenLabs words carry them too).
_CLAUSE_END = ".,;:!?…"
_WORD = re.compile(r"[^\s—–]+")  # dashes separate words even without spaces around them
_VOICE_NAME = re.compile(r"\w[\w ()/-]{0,79}(\+[\w-]{1,40})?")  # no dots, no leading slash: no paths


class _EventId(ctypes.Union):  # unused, but its 8 bytes set the stride of espeak's event array
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """espeak_EVENT: 24 bytes of ints, user_data at offset 24, the id union at 32; 40 bytes on LP64."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class _Voice(ctypes.Structure):
    """espeak_VOICE, used to select a voice by language when no voice file has that name."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


class _Engine:
    """A freshly loaded espeak-ng for one render; only ever used under _LOCK (see _fresh_engine)."""

    def __init__(self) -> None:
        try:
            self._data = Path(espeakng_loader.get_data_path())
            lib = ctypes.CDLL(espeakng_loader.get_library_path())
        except (OSError, RuntimeError) as exc:
            raise ProviderError(
                ErrorKind.not_configured, f"espeak-ng is unusable: {exc}", provider="local"
            ) from exc
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByProperties.argtypes = [ctypes.POINTER(_Voice)]
        lib.espeak_GetCurrentVoice.restype = ctypes.POINTER(_Voice)
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint),
            ctypes.c_void_p,
        ]
        flags = _INITIALIZE_DONT_EXIT  # without it a broken data folder calls exit() on the whole process
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, str(self._data).encode(), flags)
        if rate <= 0:
            _ctypes.dlclose(lib._handle)
            raise ProviderError(
                ErrorKind.not_configured, f"espeak-ng failed to start from {self._data}", provider="local"
            )
        self.sample_rate: int = rate
        self._lib = lib
        self._callback = _SynthCallback(self._on_audio)  # kept on self: the library holds only a raw pointer
        lib.espeak_SetSynthCallback(self._callback)
        self._chunks: list[bytes] = []
        self._words: list[tuple[int, int]] = []

    def _on_audio(self, wav: ctypes._Pointer, count: int, events: ctypes._Pointer) -> int:
        if count > 0:
            self._chunks.append(ctypes.string_at(wav, count * 2))
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            if events[i].type == _EVENT_WORD:
                self._words.append((events[i].text_position - 1, events[i].audio_position))  # counts from 1
            i += 1
        return 0

    def select_voice(self, voice: str) -> bool:
        """Pick a voice by file or name ("en-us", "gmw/en"), else by language ("en-gb"); '+variant' optional."""
        base, plus, variant = voice.partition("+")
        if not _VOICE_NAME.fullmatch(voice) or (
            plus and not (self._data / "voices" / "!v" / variant).is_file()
        ):
            return False
        if self._lib.espeak_SetVoiceByName(voice.encode()) == _EE_OK:
            return True
        wanted = _Voice(languages=base.encode())
        if self._lib.espeak_SetVoiceByProperties(ctypes.byref(wanted)) != _EE_OK:
            return False
        if plus:
            identifier = self._lib.espeak_GetCurrentVoice().contents.identifier.decode()
            return self._lib.espeak_SetVoiceByName(f"{identifier}+{variant}".encode()) == _EE_OK
        return True

    def synthesize(self, text: str, seed: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """PCM samples of the current voice speaking text, and (character index, ms) of each word event."""
        self._chunks, self._words = [], []
        self._lib.espeak_SetParameter(_PARAM_RATE, RATE_WPM, 0)
        self._lib.espeak_ng_SetRandSeed(seed)  # voice variants add breath noise from espeak's generator
        data = text.encode()
        status = self._lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if status != _EE_OK:
            raise ProviderError(
                ErrorKind.generation_failed, f"espeak_Synth returned {status}", provider="local"
            )
        pcm = np.frombuffer(b"".join(self._chunks), dtype=np.int16)
        return pcm, self._words

    def close(self) -> None:
        self._lib.espeak_Terminate()
        _ctypes.dlclose(self._lib._handle)


_LOCK = threading.Lock()  # espeak-ng keeps one global synthesizer and is not thread-safe


@contextmanager
def _fresh_engine() -> Iterator[_Engine]:
    """espeak-ng for one render, loaded anew so that the same spec always gives the same bytes.

    The library keeps synthesis state in C statics that espeak_Terminate and espeak_Initialize leave alone,
    so a long-lived instance drifts by a few samples per utterance; unloading and reloading costs ~5 ms.
    """
    with _LOCK:
        engine = _Engine()
        try:
            yield engine
        finally:
            engine.close()


def caption_words(text: str) -> list[tuple[int, int]]:
    """Character spans of the words a caption shows: split on spaces and dashes, quotes and brackets dropped,
    a clause-ending mark kept so captions can break there."""
    spans = []
    for match in _WORD.finditer(text):
        start, end = match.span()
        while start < end and text[start] in _EDGE_PUNCTUATION:
            start += 1
        while end > start and text[end - 1] in _EDGE_PUNCTUATION:
            end -= 1
        if start < end:
            tail = text[end : match.end()].lstrip("\"'“”‘’»)]}>*_~")
            spans.append((start, end + 1 if tail[:1] and tail[0] in _CLAUSE_END else end))
    return spans


def align_words(
    text: str, events: list[tuple[int, int]], pcm: np.ndarray, sample_rate: int
) -> list[WordTiming]:
    """Turn espeak's word events (character index, ms) into one timing per caption word.

    espeak reports a word where it starts reading it, so an event that lands between words belongs to the
    next one; numbers and symbols can raise several events inside one word. A word ends at its last
    non-silent sample before the next word starts, so pauses after commas and full stops are not captioned.
    """
    spans = caption_words(text)
    first_sample: dict[int, int] = {}
    w = 0
    for position, ms in events:
        while w < len(spans) and spans[w][1] <= position:
            w += 1
        if w == len(spans):
            break
        first_sample.setdefault(w, ms * sample_rate // 1000)
    timed = list(first_sample)
    if not timed:
        return []
    loud = np.abs(pcm.astype(np.int32)) > _SILENCE
    timings: list[WordTiming] = []
    for k, index in enumerate(timed):
        # Words espeak spoke without an event of their own share the span of the timed word before them.
        group = range(0 if k == 0 else index, timed[k + 1] if k + 1 < len(timed) else len(spans))
        begin = first_sample[index]
        limit = first_sample[timed[k + 1]] if k + 1 < len(timed) else len(pcm)
        sounding = np.flatnonzero(loud[begin:limit])
        end = begin + int(sounding[-1]) + 1 if sounding.size else max(limit, begin)
        total = sum(spans[i][1] - spans[i][0] for i in group)
        said = 0
        for i in group:
            start = begin + (end - begin) * said / total
            said += spans[i][1] - spans[i][0]
            # At the group's last word said == total, so it ends exactly at `end`, never past the next word.
            stop = begin + (end - begin) * said / total
            word = text[spans[i][0] : spans[i][1]]
            timings.append(WordTiming(word=word, start_s=start / sample_rate, end_s=stop / sample_rate))
    return timings


def _wav_bytes(pcm: np.ndarray, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.astype("<i2").tobytes())
    return buffer.getvalue()


class LocalSpeech(SyncGenerator):
    """Speaks a voice-over with espeak-ng: a 16-bit mono WAV plus when each word is said."""

    name = "local"
    capability = Capability.speech
    model = "espeak-ng"

    def render(self, spec: AssetSpec) -> Output:
        text = spec.prompt.replace("\0", " ")  # a NUL would end the C string early
        if not text.strip():
            raise ProviderError(ErrorKind.invalid_input, "the voice-over text is empty", provider=self.name)
        voice = spec.voice or DEFAULT_VOICE
        with _fresh_engine() as engine:
            if not engine.select_voice(voice):
                raise ProviderError(
                    ErrorKind.invalid_input,
                    f"espeak-ng has no voice {voice!r}; try 'en-us', 'en-gb' or 'fr'",
                    provider=self.name,
                )
            pcm, events = engine.synthesize(text, spec.seed)
            sample_rate = engine.sample_rate
        words = align_words(text, events, pcm, sample_rate)
        if not words:
            raise ProviderError(
                ErrorKind.invalid_input,
                f"nothing speakable in the voice-over text {text!r}",
                provider=self.name,
            )
        return Output(
            data=_wav_bytes(pcm, sample_rate),
            mime="audio/wav",
            duration_s=len(pcm) / sample_rate,
            words=words,
        )
