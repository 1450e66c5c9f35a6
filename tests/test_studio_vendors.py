"""The script studio on the vendor simulator, voiced by ElevenLabs and presented by HeyGen: a script completes (a
two-voice scene in one dialogue request, a portrait animated by Avatar IV), a rerun sends the vendors nothing,
faults never pay for anything twice, a failed presenter fails its scene only, and a talking photo the account
lacks or a portrait that is no usable image is refused by its line before anything is paid for."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from PIL import Image

from cutroom.media import probe
from cutroom.script import ScriptError
from cutroom.storage import path_of
from flows.script_video import MAX_PORTRAIT_BYTES
from providers.elevenlabs import VOICES as PREMADE

VENDORS = ("elevenlabs", "heygen")
PHOTO = "Monica_inSleeveless_20220819"
#: A presenter scene in two voices, which ElevenLabs speaks in one dialogue request.
HELLO = (
    "[Scene 1 – Hello]\n"
    'Dialogue (VO): "Welcome aboard."\n'
    'Dialogue (Maya): "I am Maya."\n'
    f"Talking photo: {PHOTO}\n"
)
#: A talking photo and a B-roll scene (its still and clip made locally): the smallest script both paths take.
SCRIPT = (
    HELLO + '\n[Scene 2 – Coast]\nVisual: Kayaks on a calm sea\nDialogue (VO): "Forty kilometres of coast."\n'
)
#: A talking photo and a presenter from a photo beside the script, which HeyGen animates with Avatar IV.
PRESENTERS = HELLO + '\n[Scene 2 – Guide]\nDialogue (Maya): "Paddle with me."\nPortrait: maya.png\n'
#: Eleven v3 speaks a scene of several voices in one text-to-dialogue request.
PROVIDERS = {"speech": ["elevenlabs:eleven_v3"], "avatar": ["heygen"], "image": ["local"], "video": ["local"]}
VOICES = {"VO": "george", "Maya": "rachel"}
FAST = {"latency_scale": 0.01, "latency_jitter": 0, "retry_after_s": 0.05}


def run(out: Any, script: str = SCRIPT) -> Any:
    """The script run with its files (a portrait) looked for in `out`."""
    from flows.script_video import script_video

    made = script_video(
        script, out=str(out), campaign_id="studio", providers=PROVIDERS, voices=VOICES, folder=str(out)
    )
    return asyncio.run(made)


def vendor_requests(sim: Any, since: int = 0) -> list[dict[str, Any]]:
    return [r for r in sim.requests()[since:] if r["vendor"] in VENDORS]


def paid_jobs(sim: Any, vendor: str) -> int:
    return sum(job["vendor"] == vendor for job in sim.jobs())


def test_the_script_completes_on_the_vendors_and_a_rerun_sends_them_nothing(flows_on_simulator, tmp_path):
    sim = flows_on_simulator
    sim.reset(**FAST)
    Image.new("RGB", (320, 400), "#b07a5a").save(tmp_path / "maya.png")
    first = run(tmp_path, PRESENTERS)
    presenter, pictured = first.scenes
    assert first.status == "complete", [(s.id, s.step, s.error) for s in first.scenes]
    assert {a.provider for a in presenter.assets} == {a.provider for a in pictured.assets} == set(VENDORS)
    for scene in first.scenes:
        video = probe(path_of(scene.video))
        assert video.has_video and video.has_audio
    # Both voices of scene 1 in one dialogue request; its timestamps time the captions.
    assert [w.word for w in presenter.words] == ["Welcome", "aboard.", "I", "am", "Maya."]
    spoken = [r for r in vendor_requests(sim) if r["vendor"] == "elevenlabs"]
    dialogues = [r for r in spoken if r["path"].startswith("/elevenlabs/v1/text-to-dialogue/")]
    assert [[line["voice_id"] for line in r["body"]["inputs"]] for r in dialogues] == [
        [PREMADE["george"], PREMADE["rachel"]]
    ]
    assert len(spoken) == 2  # the dialogue, and the portrait scene's one line
    # The portrait went up once and Avatar IV animated it; the talking photo took v2 generate.
    made = [r for r in vendor_requests(sim) if r["method"] == "POST" and "/video/" in r["path"]]
    assert sorted(r["path"] for r in made) == ["/heygen/v2/video/av4/generate", "/heygen/v2/video/generate"]
    assert [a.model for a in pictured.assets if a.kind == "avatar"] == ["avatar-iv"]
    manifest = json.loads((tmp_path / "campaigns" / "studio" / "script" / "manifest.json").read_text())
    assert {"status", "scenes", "video"} <= manifest.keys() and manifest["video"] == first.video
    assert [{k: s[k] for k in ("id", "status", "audio", "video", "error")} for s in manifest["scenes"]] == [
        {"id": s.id, "status": "complete", "audio": s.audio, "video": s.video, "error": None}
        for s in first.scenes
    ]
    uploads = [r for r in vendor_requests(sim) if r["path"] == "/heygen/upload/v1/asset"]
    assert [r["status"] for r in uploads] == [200, 200, 200]  # two voices and the portrait

    before = len(sim.requests())
    again = run(tmp_path, PRESENTERS)
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
    assert {a.provider for a in broll.assets} == {"elevenlabs", "local"}
    assert paid_jobs(sim, "heygen") == 1  # refused by HeyGen, so not asked again


def test_a_talking_photo_the_account_lacks_is_refused_by_its_line_before_anything_is_paid(
    flows_on_simulator, tmp_path
):
    sim = flows_on_simulator
    sim.reset(**FAST)
    with pytest.raises(ScriptError) as caught:
        run(tmp_path, SCRIPT.replace(PHOTO, "unknown_Presenter_2020"))
    assert caught.value.line == 4 and "unknown_Presenter_2020" in str(caught.value)
    assert [(r["method"], r["path"]) for r in vendor_requests(sim)] == [("GET", "/heygen/v2/avatars")]
    assert sim.jobs() == []


@pytest.mark.parametrize(
    ("portrait", "words"),
    [
        ("nowhere.png", "which does not exist"),
        ("big.png", "which is 10.0 MB; at most 10 MB"),
        ("notes.png", "which is not a PNG, JPEG or WebP image"),
    ],
)
def test_a_portrait_that_is_no_usable_image_is_refused_by_its_line_before_anything_is_paid(
    flows_on_simulator, tmp_path, portrait, words
):
    sim = flows_on_simulator
    sim.reset(**FAST)
    with (tmp_path / "big.png").open("wb") as big:  # sparse: a PNG's header, then nothing written
        big.write(b"\x89PNG\r\n\x1a\n")
        big.truncate(MAX_PORTRAIT_BYTES + 1)
    (tmp_path / "notes.png").write_text("not a picture")
    with pytest.raises(ScriptError) as caught:
        run(tmp_path, PRESENTERS.replace("maya.png", portrait))
    assert caught.value.line == 8 and words in str(caught.value) and len(str(caught.value)) < 250
    assert [r for r in vendor_requests(sim) if r["method"] != "GET"] == [] and sim.jobs() == []
