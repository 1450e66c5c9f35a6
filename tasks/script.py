"""Scene-script steps after the paid ones: a scene's lines joined into one voice, and scenes cut into videos.

Speaking a line and making a presenter or a B-roll clip are no steps of their own: each is `generate` on its spec,
so every vendor call gets the ledger, the journal and the content-addressed store that every paid asset has.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from prefect import task
from pydantic import BaseModel, Field

from cutroom.assembly import Cut, assemble_reel
from cutroom.assets import Asset, WordTiming
from cutroom.brief import Brand
from cutroom.channels import Format
from cutroom.mastering import read_pcm, wav_bytes
from cutroom.script import SceneVoice
from cutroom.storage import campaign_prefix, open_storage, sha256_bytes, sha256_file
from tasks.policy import in_thread, key_on, local_slots

#: The breath between two lines of a scene.
LINE_GAP_S = 0.3


def script_key(campaign_id: str, name: str) -> str:
    return f"{campaign_prefix(campaign_id)}/script/{name}"


def _join(lines: list[Asset], out: str, campaign_id: str, scene: str) -> SceneVoice:
    storage = open_storage(out)
    rate = None
    parts, words, at = [], [], 0
    for line in lines:
        pcm, rate = read_pcm(storage.local_path(storage.key_of(line.uri)), rate)
        shift = at / rate
        words += [
            w.model_copy(update={"start_s": w.start_s + shift, "end_s": w.end_s + shift}) for w in line.words
        ]
        parts += [pcm, np.zeros(round(LINE_GAP_S * rate), np.int16)]
        at += len(pcm) + len(parts[-1])
    track = np.concatenate(parts[:-1])  # no breath after the last line
    data = wav_bytes(track, rate)
    uri = storage.put_bytes(script_key(campaign_id, f"scenes/{scene}.wav"), data, "audio/wav")
    return SceneVoice(uri=uri, sha256=sha256_bytes(data), duration_s=len(track) / rate, words=words)


@task(
    name="join-voice",
    task_run_name="voice-{scene}",
    # The lines' URIs are content addresses: the same lines make the same voice.
    cache_key_fn=key_on("lines", "out", "campaign_id", "scene"),
    persist_result=True,
)
async def join_voice(lines: list[Asset], out: str, campaign_id: str, scene: str) -> SceneVoice:
    """Lay a scene's spoken lines end to end, a short breath apart, with each word's time moved to match."""
    return await in_thread(_join, lines, out, campaign_id, scene)


class SceneCut(BaseModel):
    """One scene's part of a video, by stored URIs."""

    scene: str
    clips: list[str]
    voice: str | None = None
    words: list[WordTiming] = Field(default_factory=list)


class Video(BaseModel):
    uri: str
    sha256: str
    duration_s: float


def _cut(
    name: str, cuts: list[SceneCut], fmt: Format, brand: Brand, end_card_s: float, out: str, campaign_id: str
) -> Video:
    storage = open_storage(out)

    def local(uri: str) -> Path:
        return storage.local_path(storage.key_of(uri))

    parts = [
        Cut(
            story_id=cut.scene,
            clips=[local(c) for c in cut.clips],
            voice=local(cut.voice) if cut.voice else None,
            words=cut.words,
        )
        for cut in cuts
    ]
    with tempfile.TemporaryDirectory() as tmp, local_slots():
        target = Path(tmp) / "cut.mp4"
        # Hard cuts: a crossfade would clip the end of each scene's voice.
        info = assemble_reel(parts, fmt, brand, "", target, crossfade_s=0.0, end_card_s=end_card_s).info
        uri = storage.put_file(script_key(campaign_id, name), target, "video/mp4")
        return Video(uri=uri, sha256=sha256_file(target), duration_s=info.duration_s or 0.0)


@task(
    name="cut-scenes",
    task_run_name="cut-{name}",
    retries=1,
    cache_key_fn=key_on("name", "cuts", "fmt", "brand", "end_card_s", "out", "campaign_id"),
    persist_result=True,
)
async def cut_scenes(
    name: str, cuts: list[SceneCut], fmt: Format, brand: Brand, end_card_s: float, out: str, campaign_id: str
) -> Video:
    """Scenes as one captioned H.264/AAC video at script/{name}: a scene's own video, or all of them stitched
    (then ending on the brand card)."""
    return await in_thread(_cut, name, cuts, fmt, brand, end_card_s, out, campaign_id)
