"""The master's sound: speech decoded to one sample rate, brought to a spoken-word loudness, and written as WAV
and MP3 with the bundled ffmpeg.

Loudness comes from one measured gain and a look-ahead limiter whose delay ffmpeg compensates, not from the
loudnorm filter: loudnorm's dynamic mode rides the level through the pauses and resamples, which moves the
edges the pauses are measured between. Both keep every sample where it was, and zero samples stay zero.
"""

from __future__ import annotations

import io
import json
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

from cutroom.media import MediaError, ffmpeg_exe

#: Spoken-word loudness as podcast platforms ask for it, with headroom for the MP3 encoder's overshoot.
TARGET_LUFS = -16.0
PEAK_DBFS = -1.5
MP3_BITRATE = "96k"  # mono speech; transparent at the 22.05-48 kHz rates voices come in


def _ffmpeg(args: list[str], what: str, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", *args]
    proc = subprocess.run(cmd, input=data, capture_output=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.decode(errors="replace").strip().splitlines()[-5:])
        raise MediaError(f"ffmpeg failed while {what}: {tail}")
    return proc


def read_pcm(path: Path, rate: int | None = None) -> tuple[np.ndarray, int]:
    """Mono 16-bit samples of an audio file and their rate; anything but such a WAV (at `rate`, when given) is
    decoded by ffmpeg, so a vendor's MP3 or 44.1 kHz voice stitches beside espeak's 22.05 kHz WAV."""
    try:
        with wave.open(str(path), "rb") as wav:
            if wav.getnchannels() == 1 and wav.getsampwidth() == 2 and rate in (None, wav.getframerate()):
                return np.frombuffer(wav.readframes(wav.getnframes()), "<i2"), wav.getframerate()
    except (wave.Error, EOFError):
        pass
    rate = rate or 44_100
    args = ["-loglevel", "error", "-i", str(path), "-f", "s16le", "-ac", "1", "-ar", str(rate), "pipe:1"]
    return np.frombuffer(_ffmpeg(args, f"decoding {path.name}").stdout, "<i2"), rate


def wav_bytes(pcm: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.astype("<i2").tobytes())
    return buffer.getvalue()


def _raw_input(rate: int) -> list[str]:
    return ["-f", "s16le", "-ar", str(rate), "-ac", "1", "-i", "pipe:0"]


def loudness(pcm: np.ndarray, rate: int) -> float | None:
    """Integrated loudness (EBU R128, LUFS); its gating leaves pauses out. None for a silent track."""
    args = ["-loglevel", "info", *_raw_input(rate), "-af", "loudnorm=print_format=json", "-f", "null", "-"]
    report = _ffmpeg(args, "measuring loudness", pcm.astype("<i2").tobytes()).stderr.decode()
    measured = json.loads(report[report.rindex("{") : report.rindex("}") + 1])["input_i"]
    return None if measured in ("-inf", "inf") else float(measured)


def normalised(pcm: np.ndarray, rate: int) -> tuple[np.ndarray, float]:
    """The track at TARGET_LUFS, its peaks held under PEAK_DBFS, and the gain applied in dB; same length, same
    silences. (A voice's peaks sit 15-20 dB over its loudness: a gain alone could not pass -20 LUFS.)"""
    measured = loudness(pcm, rate)
    if measured is None:
        return pcm, 0.0
    gain_db = TARGET_LUFS - measured
    limit = 10 ** (PEAK_DBFS / 20)
    chain = f"volume={gain_db:.2f}dB,alimiter=limit={limit:.4f}:level=0:latency=1:attack=5:release=50"
    args = [
        "-loglevel",
        "error",
        *_raw_input(rate),
        "-af",
        chain,
        "-f",
        "s16le",
        "-ac",
        "1",
        "-ar",
        str(rate),
    ]
    levelled = _ffmpeg([*args, "pipe:1"], "levelling the master", pcm.astype("<i2").tobytes()).stdout
    return np.frombuffer(levelled, "<i2"), gain_db


def mp3_bytes(pcm: np.ndarray, rate: int) -> bytes:
    """CBR MP3 written to a file (not a pipe) so that it carries the header that tells players its encoder delay."""
    with tempfile.TemporaryDirectory(prefix="cutroom-mp3-") as folder:
        target = Path(folder) / "master.mp3"
        args = [
            "-loglevel",
            "error",
            *_raw_input(rate),
            "-c:a",
            "libmp3lame",
            "-b:a",
            MP3_BITRATE,
            str(target),
        ]
        _ffmpeg(args, "encoding the MP3 master", pcm.astype("<i2").tobytes())
        return target.read_bytes()
