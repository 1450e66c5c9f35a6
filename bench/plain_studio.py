"""`python -m bench.plain_studio SCRIPT OUT`: the script studio's vendor calls without Cutroom, for P9.

What a user writes instead, as the seed studio's loop did: scene by scene, httpx straight at the vendors' APIs (here
the simulator's) — ElevenLabs speaks the scene (one text-to-dialogue request for several voices), its audio goes up
to HeyGen, HeyGen makes the talking-photo video, polled every 5 s of the vendor's clock (HeyGen's floor) until it is
done, then downloaded. The same requests Cutroom sends, without its ledger, cache, upload memory or concurrency: a
second run pays for everything again.
"""

from __future__ import annotations

import argparse
import base64
import time
from pathlib import Path

import httpx

from bench.studio import VOICES
from cutroom.channels import SIZES, Aspect
from cutroom.script import Scene, parse_scene_script
from providers import declarations
from providers.elevenlabs import VOICES as PREMADE
from providers.simulation import simulator_url, time_scale

MODEL = "eleven_v3"
#: HeyGen's documented poll floor, on the vendor's clock.
POLL_S = 5.0


def key(vendor: str) -> str:
    """The simulator's key for the vendor, of the vendor's own shape."""
    simulated = declarations.vendor(vendor).simulator
    if simulated is None:
        raise SystemExit(f"{vendor} has no simulator to run against")
    return simulated.key


def speak(http: httpx.Client, scene: Scene) -> bytes:
    """The scene's voice as MP3: one request, whether one voice speaks it or several."""
    voices = [PREMADE[VOICES[line.speaker]] for line in scene.dialogue]
    if len(set(voices)) > 1:
        inputs = [{"text": line.text, "voice_id": v} for line, v in zip(scene.dialogue, voices, strict=True)]
        path, body = "/elevenlabs/v1/text-to-dialogue/with-timestamps", {"inputs": inputs, "model_id": MODEL}
    else:
        path = f"/elevenlabs/v1/text-to-speech/{voices[0]}/with-timestamps"
        body = {"text": scene.spoken, "model_id": MODEL}
    answer = http.post(path, json=body, headers={"xi-api-key": key("elevenlabs")})
    answer.raise_for_status()
    return base64.b64decode(answer.json()["audio_base64"])


def present(http: httpx.Client, scene: Scene, audio: bytes, poll_s: float) -> bytes:
    """The talking photo speaking the audio: upload, generate, poll until completed, download."""
    headers = {"X-Api-Key": key("heygen")}
    uploaded = http.post(
        "/heygen/upload/v1/asset", content=audio, headers={**headers, "Content-Type": "audio/mpeg"}
    )
    uploaded.raise_for_status()
    width, height = SIZES[Aspect.landscape]
    character = {"type": "talking_photo", "talking_photo_id": scene.talking_photo}
    made = http.post(
        "/heygen/v2/video/generate",
        headers=headers,
        json={
            "video_inputs": [
                {
                    "character": character,
                    "voice": {"type": "audio", "audio_asset_id": uploaded.json()["data"]["id"]},
                }
            ],
            "dimension": {"width": width, "height": height},
            "title": scene.spoken[:100],
        },
    )
    made.raise_for_status()
    video_id = made.json()["data"]["video_id"]
    while True:
        time.sleep(poll_s)
        status = http.get("/heygen/v1/video_status.get", params={"video_id": video_id}, headers=headers)
        status.raise_for_status()
        data = status.json()["data"]
        if data["status"] == "completed":
            break
        if data["status"] == "failed":
            raise RuntimeError(f"scene {scene.id}: {data['error']}")
    video = http.get(data["video_url"])
    video.raise_for_status()
    return video.content


def main(script: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    scenes = parse_scene_script(script.read_text()).scenes
    poll_s = POLL_S * time_scale()
    with httpx.Client(base_url=str(simulator_url()), timeout=120) as http:
        for scene in scenes:
            audio = speak(http, scene)
            (out / f"{scene.slug}.mp3").write_bytes(audio)
            (out / f"{scene.slug}.mp4").write_bytes(present(http, scene, audio, poll_s))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.plain_studio", description=__doc__)
    parser.add_argument("script", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    main(args.script, args.out)
