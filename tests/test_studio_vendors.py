"""The script studio on the vendor simulator, voiced by ElevenLabs and presented by HeyGen: a script completes, a
rerun sends the vendors nothing, faults never pay for anything twice, a failed presenter fails its scene only,
and a talking photo the account lacks is refused by its line before anything is paid for."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from cutroom.media import probe
from cutroom.script import ScriptError
from cutroom.storage import path_of

VENDORS = ("elevenlabs", "heygen")
PHOTO = "Monica_inSleeveless_20220819"
#: One presenter scene, one B-roll scene (its still and clip made locally): the smallest script both paths take.
SCRIPT = (
    "[Scene 1 – Hello]\n"
    'Dialogue (VO): "Welcome aboard."\n'
    f"Talking photo: {PHOTO}\n"
    "\n"
    "[Scene 2 – Coast]\n"
    "Visual: Kayaks on a calm sea\n"
    'Dialogue (VO): "Forty kilometres of coast."\n'
)
PROVIDERS = {"speech": ["elevenlabs"], "avatar": ["heygen"], "image": ["local"], "video": ["local"]}
FAST = {"latency_scale": 0.01, "latency_jitter": 0, "retry_after_s": 0.05}


def run(out: Any, script: str = SCRIPT) -> Any:
    from flows.script_video import script_video

    return asyncio.run(script_video(script, out=str(out), campaign_id="studio", providers=PROVIDERS))


def vendor_requests(sim: Any, since: int = 0) -> list[dict[str, Any]]:
    return [r for r in sim.requests()[since:] if r["vendor"] in VENDORS]


def paid_jobs(sim: Any, vendor: str) -> int:
    return sum(job["vendor"] == vendor for job in sim.jobs())


def test_the_script_completes_on_the_vendors_and_a_rerun_sends_them_nothing(flows_on_simulator, tmp_path):
    sim = flows_on_simulator
    sim.reset(**FAST)
    first = run(tmp_path)
    presenter, broll = first.scenes
    assert first.status == "complete", [(s.id, s.step, s.error) for s in first.scenes]
    assert {a.provider for a in presenter.assets} == set(VENDORS)
    assert {a.provider for a in broll.assets} == {"elevenlabs", "local"}
    for scene in first.scenes:
        video = probe(path_of(scene.video))
        assert video.has_video and video.has_audio
    assert [w.word for w in presenter.words] == ["Welcome", "aboard."]  # ElevenLabs' timestamps, for captions
    manifest = json.loads((tmp_path / "campaigns" / "studio" / "script" / "manifest.json").read_text())
    assert {"status", "scenes", "video"} <= manifest.keys() and manifest["video"] == first.video
    assert [{k: s[k] for k in ("id", "status", "audio", "video", "error")} for s in manifest["scenes"]] == [
        {"id": s.id, "status": "complete", "audio": s.audio, "video": s.video, "error": None}
        for s in first.scenes
    ]
    uploads = [r for r in vendor_requests(sim) if r["path"] == "/heygen/upload/v1/asset"]
    assert [r["status"] for r in uploads] == [200]

    before = len(sim.requests())
    again = run(tmp_path)
    assert [(s.status, s.video) for s in again.scenes] == [(s.status, s.video) for s in first.scenes]
    sent = vendor_requests(sim, since=before)
    assert [r for r in sent if r["method"] != "GET"] == []  # no upload, no create: nothing paid, nothing sent


def test_under_faults_every_voice_and_presenter_is_paid_for_once(flows_on_simulator, tmp_path):
    sim = flows_on_simulator
    sim.reset(**FAST, fault_rate=0.2, faults=["429", "5xx", "reset"], seed=13)
    made = run(tmp_path)
    assert made.status == "complete", [(s.id, s.step, s.error) for s in made.scenes]
    assets = [a for scene in made.scenes for a in scene.assets]
    for vendor in VENDORS:
        assert paid_jobs(sim, vendor) == sum(a.provider == vendor for a in assets), vendor
    assert any(r["fault"] for r in vendor_requests(sim))


def test_a_presenter_heygen_fails_fails_its_scene_only(flows_on_simulator, tmp_path):
    sim = flows_on_simulator
    # ElevenLabs documents no moderation of speech, so only HeyGen's jobs draw this fault: each of them ends failed.
    sim.reset(**FAST, fault_rate=1.0, faults=["moderation"])
    made = run(tmp_path)
    presenter, broll = made.scenes
    assert (presenter.status, presenter.step) == ("failed", "avatar")
    assert "moderation" in presenter.error.lower()
    assert presenter.audio and presenter.video is None  # its voice stays made for a rerun
    assert broll.status == "complete" and made.video and made.status == "partial"
    assert paid_jobs(sim, "heygen") == 1  # refused by HeyGen, so not asked again


def test_a_talking_photo_the_account_lacks_is_refused_by_its_line_before_anything_is_paid(
    flows_on_simulator, tmp_path
):
    sim = flows_on_simulator
    sim.reset(**FAST)
    with pytest.raises(ScriptError) as caught:
        run(tmp_path, SCRIPT.replace(PHOTO, "unknown_Presenter_2020"))
    assert caught.value.line == 3 and "unknown_Presenter_2020" in str(caught.value)
    assert [(r["method"], r["path"]) for r in vendor_requests(sim)] == [("GET", "/heygen/v2/avatars")]
    assert sim.jobs() == []
