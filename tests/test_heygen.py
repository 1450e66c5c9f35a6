"""The HeyGen adapter against simulator/heygen.py over loopback: what the contract suite does not check — uploads
kept with the storage (sent once, reused on another run, sent again for another storage or when forced, or when
HeyGen lost them), a HeyGen asset named in the script, Avatar IV from a portrait, an unknown talking photo."""

from __future__ import annotations

import json
import wave
from pathlib import Path
from typing import Any

import httpx
import pytest

from cutroom.assets import AssetKind, AssetSpec, InputRef
from cutroom.channels import SIZES, Aspect
from cutroom.storage import LocalStorage, sha256_bytes
from cutroom.uploads import upload_key, uploads_kept_in
from providers.errors import ErrorKind
from providers.heygen import HeyGenAvatar
from providers.polling import run_job
from tests.vendor_helpers import image_ref, on_simulator, refused

SCALE = 0.002
UPLOADS = "/heygen/upload/v1/asset"
PHOTO = "Monica_inSleeveless_20220819"


@pytest.fixture
def sim(simulator: Any) -> Any:
    simulator.reset(latency_scale=SCALE, latency_jitter=0)
    return simulator


def adapter(sim: Any, model: str | None = None) -> HeyGenAvatar:
    return on_simulator(HeyGenAvatar, sim, model, scale=SCALE, timeout=10.0)


def voice(path: Path, seconds: float = 1.5) -> InputRef:
    """A real wav of silence, as the audio input."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(bytes(2 * int(16000 * seconds)))
    return InputRef(role="audio", uri=path.as_uri(), sha256="0" * 64)


def scene(*inputs: InputRef, model: str = "talking-photo-v2", aspect: Aspect = Aspect.landscape,
          **options: Any) -> AssetSpec:  # fmt: skip
    if model == "talking-photo-v2":
        options = {"talking_photo_id": PHOTO, **options}
    width, height = SIZES[aspect]
    return AssetSpec(kind=AssetKind.avatar, provider="heygen", model=model, prompt="Welcome to our platform",
                     inputs=inputs, aspect=aspect, width=width, height=height, options=options)  # fmt: skip


def sent(sim: Any, path: str) -> list[dict[str, Any]]:
    return [r for r in sim.requests() if r["method"] == "POST" and r["path"] == path and r["status"] == 200]


def test_the_same_audio_is_uploaded_once_per_storage_and_again_when_forced(sim, tmp_path):
    audio = voice(tmp_path / "scene1.wav")
    first, second = LocalStorage(tmp_path / "a"), LocalStorage(tmp_path / "b")
    with uploads_kept_in(first):
        made = run_job(adapter(sim), scene(audio))
    # A rerun: another adapter, as another process builds it (uploads happen at submit).
    with uploads_kept_in(first):
        adapter(sim).submit(scene(audio))
    assert len(sent(sim, UPLOADS)) == 1
    assert made.mime == "video/mp4" and made.duration_s == pytest.approx(1.5, abs=0.2)
    digest = sha256_bytes((tmp_path / "scene1.wav").read_bytes())
    record = json.loads(first.read_bytes(upload_key("heygen", digest)))
    assert record["vendor"] == "heygen" and record["mime"] == "audio/wav"

    with uploads_kept_in(second):  # another campaign storage has no record: sent
        adapter(sim).submit(scene(audio))
    assert len(sent(sim, UPLOADS)) == 2

    with uploads_kept_in(first, force=True):
        adapter(sim).submit(scene(audio))
    assert len(sent(sim, UPLOADS)) == 3
    forced = json.loads(first.read_bytes(upload_key("heygen", record["sha256"])))
    assert forced["asset_id"] != record["asset_id"]  # the new asset is the one kept from now on
    with uploads_kept_in(first):
        adapter(sim).submit(scene(audio))
    assert len(sent(sim, UPLOADS)) == 3
    voices = [r["body"]["video_inputs"][0]["voice"] for r in sent(sim, "/heygen/v2/video/generate")]
    assert voices[-1] == {"type": "audio", "audio_asset_id": forced["asset_id"]}


def test_a_kept_asset_heygen_no_longer_has_is_uploaded_again(sim, tmp_path):
    audio, storage = voice(tmp_path / "scene.wav"), LocalStorage(tmp_path / "out")
    with uploads_kept_in(storage):
        adapter(sim).submit(scene(audio))
    sim.reset(latency_scale=SCALE, latency_jitter=0)  # HeyGen forgot every asset; the record is still kept
    with uploads_kept_in(storage):
        made = run_job(adapter(sim), scene(audio))
    assert made.mime == "video/mp4" and len(sent(sim, UPLOADS)) == 1
    assert len([j for j in sim.jobs() if j["vendor"] == "heygen"]) == 1


def test_an_asset_id_from_the_script_is_lip_synced_without_uploading(sim, tmp_path):
    wav = tmp_path / "uploaded-earlier.wav"
    voice(wav)
    asset = httpx.post(f"{sim.url}{UPLOADS}", content=wav.read_bytes(), timeout=10,
                       headers={"X-Api-Key": adapter(sim).api_key, "Content-Type": "audio/wav"}).json()  # fmt: skip
    made = run_job(adapter(sim), scene(voice(tmp_path / "local.wav", 3.0), asset_id=asset["data"]["id"]))
    assert len(sent(sim, UPLOADS)) == 1  # only the user's own upload
    (generate,) = sent(sim, "/heygen/v2/video/generate")
    assert generate["body"]["video_inputs"][0]["voice"]["audio_asset_id"] == asset["data"]["id"]
    assert made.duration_s == pytest.approx(1.5, abs=0.2)  # HeyGen's asset, not the local audio


def test_avatar_iv_animates_the_uploaded_portrait_to_the_voice(sim, tmp_path):
    portrait = image_ref(tmp_path / "face.png", role="portrait", size=(360, 640))
    made = run_job(adapter(sim, "avatar-iv"), scene(voice(tmp_path / "v.wav"), portrait, model="avatar-iv",
                                                    aspect=Aspect.vertical))  # fmt: skip
    (request,) = sent(sim, "/heygen/v2/video/av4/generate")
    assert request["body"]["video_orientation"] == "portrait"
    assert request["body"]["image_key"].startswith("image/")
    assert made.height > made.width and made.duration_s == pytest.approx(1.5, abs=0.2)
    assert len(sent(sim, UPLOADS)) == 2  # the voice and the portrait


def test_an_unknown_talking_photo_is_invalid_input_naming_it(sim, tmp_path):
    error = refused(lambda: adapter(sim).submit(scene(voice(tmp_path / "v.wav"), talking_photo_id="unknown_x1")),
                    ErrorKind.invalid_input)  # fmt: skip
    assert "Talking photo unknown_x1 not found" in str(error)
    assert not [j for j in sim.jobs() if j["vendor"] == "heygen"]


def test_a_talking_photo_model_without_a_talking_photo_is_refused_before_any_request(sim, tmp_path):
    spec = scene(voice(tmp_path / "v.wav")).model_copy(update={"options": {}})
    error = refused(lambda: adapter(sim).submit(spec), ErrorKind.invalid_input)
    assert "talking_photo_id" in str(error) and "avatar-iv" in str(error)
    assert not [r for r in sim.requests() if r["vendor"] == "heygen"]


def test_an_account_without_credit_is_insufficient_credits(sim, tmp_path):
    httpx.post(f"{sim.url}/heygen/_sim/quota", json={"remaining_quota": 1}, timeout=10).raise_for_status()
    error = refused(
        lambda: adapter(sim).submit(scene(voice(tmp_path / "v.wav"))), ErrorKind.insufficient_credits
    )
    assert not error.kind.transient
