"""The script and long-form reports, and the posters every report's videos show, checked in a real headless
chromium: players that play, posters that load, a failed scene's step and reason, the timing sheets."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from browser import Chromium
from PIL import Image, ImageStat

from cutroom.assets import Asset, AssetKind, WordTiming
from cutroom.ledger import LedgerSummary
from cutroom.longform import LongformAudio, Master
from cutroom.manifest import CampaignStatus
from cutroom.media import run_ffmpeg
from cutroom.pauses import PauseCheck, PauseReport, TimedSegment, TimingSheet
from cutroom.posters import make_posters
from cutroom.report import render_longform_report, render_script_report, report_link_for, script_videos
from cutroom.script import SceneResult, SceneStatus, ScriptManifest
from cutroom.storage import LocalStorage, sha256_file

#: One worker builds this file's media and browser once (see test_report).
pytestmark = pytest.mark.xdist_group("report")

CID = "launch-script"
REFUSAL = "talking photo Monica_inSleeveless_20220819 not found (HeyGen 404: photo_id is invalid)"
WORDS = [
    WordTiming(word=w, start_s=0.4 * i, end_s=0.4 * i + 0.3)
    for i, w in enumerate(["Welcome", "to", "our", "platform.", "It", "is", "built", "for", "teams."])
]
PICTURE = "testsrc2=s=320x180:r=12:d={seconds}"


def make(folder: Path, name: str, args: list[str]) -> Path:
    run_ffmpeg([*args, str(folder / name)], what=f"making test media {name}")
    return folder / name


class Studio:
    """Real media laid out as a script run and a long-form run leave it."""

    def __init__(self, root: Path):
        self.storage = LocalStorage(root / "out")
        work = root / "work"
        work.mkdir()
        h264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"]

        def video(name: str, seconds: float) -> Path:
            sound = f"sine=frequency=330:duration={seconds}"
            picture = PICTURE.format(seconds=seconds)
            return make(work, name, ["-f", "lavfi", "-i", picture, "-f", "lavfi", "-i", sound, *h264])

        def tone(name: str, seconds: float, *codec: str) -> Path:
            return make(work, name, ["-f", "lavfi", "-i", f"sine=frequency=220:duration={seconds}", *codec])

        self.scene_video = self.put(
            f"campaigns/{CID}/script/scenes/intro.mp4", video("intro.mp4", 2), "video/mp4"
        )
        self.stitched = self.put(f"campaigns/{CID}/script/video.mp4", video("video.mp4", 3), "video/mp4")
        self.voices = [
            self.put(f"campaigns/{CID}/stories/{s}/audio/v.wav", tone(f"{s}.wav", 2, "-ac", "1"), "audio/wav")
            for s in ("intro", "demo")
        ]
        self.master_wav = self.put(
            f"campaigns/{CID}/longform/master.wav", tone("master.wav", 4, "-ac", "1"), "audio/wav"
        )
        self.master_mp3 = self.put(
            f"campaigns/{CID}/longform/master.mp3",
            tone("master.mp3", 4, "-ac", "1", "-b:a", "64k"),
            "audio/mpeg",
        )
        self.scene_wavs = [
            self.put(
                f"campaigns/{CID}/longform/scenes/0{n}.wav", tone(f"l{n}.wav", 2, "-ac", "1"), "audio/wav"
            )
            for n in (1, 2)
        ]
        self.manifest = self.storage.put_bytes(
            f"campaigns/{CID}/longform/manifest.json", b"{}", "application/json"
        )

    def put(self, key: str, path: Path, mime: str) -> str:
        return self.storage.put_file(key, path, mime)

    def script_manifest(self) -> ScriptManifest:
        paid = Asset(
            spec_key="k",
            kind=AssetKind.speech,
            provider="elevenlabs",
            model="multilingual-v2",
            prompt="Welcome to our platform. It is built for teams.",
            uri=self.voices[0],
            sha256="0" * 64,
            mime="audio/wav",
            cost_usd=0.75,
        )
        complete = SceneResult(
            id="1",
            title="Introduction",
            status=SceneStatus.complete,
            audio=self.voices[0],
            video=self.scene_video,
            words=WORDS,
            assets=[paid],
        )
        failed = SceneResult(
            id="2",
            title="Product demo",
            status=SceneStatus.failed,
            step="avatar",
            error=REFUSAL,
            audio=self.voices[1],
        )
        return ScriptManifest(
            campaign_id=CID,
            status=CampaignStatus.partial,
            scenes=[complete, failed],
            video=self.stitched,
            ledger=LedgerSummary(budget_usd=50, estimated_usd=0, spent_usd=1.23),
            lineup={"speech": "elevenlabs:multilingual-v2", "avatar": "heygen:talking-photo"},
        )

    def longform(self) -> LongformAudio:
        segments = [
            TimedSegment(
                scene="Settling in", text="Close your eyes.", start_s=0.0, end_s=0.8, pause_after_s=1.5
            ),
            TimedSegment(
                scene="Settling in", text="Breathe in slowly.", start_s=2.3, end_s=3.1, pause_after_s=5.0
            ),
            TimedSegment(scene="श्वास", text="धीरे से साँस लें।", start_s=8.1, end_s=9.0, pause_after_s=1.5),
        ]
        sheet = TimingSheet(sample_rate=22050, duration_s=10.5, segments=segments)
        checks = [
            PauseCheck(
                scene=s.scene,
                after=s.text,
                target_s=s.pause_after_s,
                measured_s=s.pause_after_s + d,
                delta_s=d,
                ok=abs(d) <= 0.06,
            )
            for s, d in zip(segments, (0.004, -0.09, 0.0), strict=True)
        ]
        master = Master(
            uri=self.master_wav,
            mp3=self.master_mp3,
            scenes=self.scene_wavs,
            gain_db=-3.2,
            sheet=sheet,
        )
        return LongformAudio(
            campaign_id=CID,
            status=CampaignStatus.partial,
            master=master,
            report=PauseReport(pauses=checks),
            manifest=self.manifest,
        )

    def write(self, key: str, html: Iterable[str]) -> Path:
        self.storage.put_bytes(key, "".join(html).encode(), "text/html")
        return self.storage.local_path(key)


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Studio:
    return Studio(tmp_path_factory.mktemp("studio"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    with Chromium() as chromium:
        yield chromium


LOAD_ALL = "document.querySelectorAll('[preload=none]').forEach(m => { m.preload = 'metadata'; m.load(); })"
PLAYABLE = "[...document.querySelectorAll('video, audio')].map(m => m.readyState >= 1 && !m.error)"
ROWS = "[...document.querySelectorAll('{} tbody tr')].map(r => [...r.cells].map(c => c.innerText))"


def test_a_poster_is_a_frame_of_its_video_made_once(studio: Studio) -> None:
    videos = {studio.scene_video: None, studio.stitched: None}
    posters = make_posters(studio.storage, CID, videos)
    key = studio.storage.key_of(posters[studio.scene_video])
    sha = sha256_file(studio.storage.local_path(studio.storage.key_of(studio.scene_video)))
    assert key == f"campaigns/{CID}/posters/{sha}.jpg", "named by its video's content"
    frame = studio.storage.local_path(key)
    made_at = frame.stat().st_mtime_ns
    image = Image.open(frame)
    assert image.format == "JPEG" and image.size == (320, 180)
    assert max(ImageStat.Stat(image.convert("RGB")).stddev) > 20, "the poster is a picture, not a black frame"

    assert make_posters(studio.storage, CID, videos) == posters
    assert frame.stat().st_mtime_ns == made_at, "a rerun reuses the poster it made"


def test_script_report_plays_every_scene_and_says_why_one_failed(
    studio: Studio, browser: Chromium, tmp_path: Path
) -> None:
    manifest = studio.script_manifest()
    key = f"campaigns/{CID}/script/index.html"
    posters = make_posters(studio.storage, CID, script_videos(manifest))
    path = studio.write(key, render_script_report(manifest, report_link_for(studio.storage, key), posters))

    with browser.page(path) as page:
        assert page.problems == []
        posters_seen = page.poster_widths()
        png = page.screenshot(tmp_path / "script.png")
        black = page.black_videos(png)
        page.evaluate(LOAD_ALL)
        page.wait_settled(20)
        playable = page.evaluate(PLAYABLE)
        players = page.evaluate(
            "[document.querySelectorAll('video').length, document.querySelectorAll('audio').length]"
        )
        intro = page.evaluate("document.querySelector('#scene-1').innerText")
        demo = page.evaluate("document.querySelector('#scene-2').innerText")
        captions = page.evaluate(ROWS.format("#scene-1 .timing"))
        text = page.evaluate("document.body.innerText")

    assert players == [2, 2], "the stitched cut and the complete scene's video; both scenes' voices"
    assert playable == [True] * 4
    assert posters_seen == [320, 320] and black == [], "every video shows its poster, not a black box"
    assert "complete" in intro.lower() and "failed" in demo.lower()
    assert "Failed at avatar" in demo and REFUSAL in demo
    assert captions == [
        ["0:00.00", "0:01.60", "Welcome to our platform."],  # held up to the next line: no flicker
        ["0:01.60", "0:03.20", "It is built for"],
        ["0:03.20", "0:03.50", "teams."],
    ]
    assert all(amount in text for amount in ("$1.23", "$50.00", "$0.75"))


def test_longform_report_shows_the_master_the_sheet_and_the_pause_off_target(
    studio: Studio, browser: Chromium
) -> None:
    key = f"campaigns/{CID}/longform/index.html"
    made = studio.longform()
    path = studio.write(key, render_longform_report(made, CID, report_link_for(studio.storage, key)))

    with browser.page(path) as page:
        assert page.problems == []
        page.evaluate(LOAD_ALL)
        page.wait_settled(20)
        playable = page.evaluate(PLAYABLE)
        scenes = page.evaluate(
            "[...document.querySelectorAll('section[id^=scene-] h3')].map(h => h.innerText)"
        )
        sheet = page.evaluate(ROWS.format("section[id^=scene-] .timing"))
        checks = page.evaluate(ROWS.format("#validation"))
        flagged = page.evaluate("[...document.querySelectorAll('#validation tr.bad')].length")
        links = page.evaluate("[...document.querySelectorAll('#master a')].map(a => a.href)")
        badge = page.evaluate("document.querySelector('.masthead .badge').innerText")

    assert playable == [True] * 3, "the master and a player per scene"
    assert scenes == ["Settling in", "श्वास"]
    assert sheet == [
        ["Close your eyes.", "0:00.00", "0:00.80", "1.50 s"],
        ["Breathe in slowly.", "0:02.30", "0:03.10", "5.00 s"],
        ["धीरे से साँस लें।", "0:08.10", "0:09.00", "1.50 s"],
    ]
    assert [row[2:] for row in checks] == [
        ["1.50 s", "1.504 s", "+4 ms", "ok"],
        ["5.00 s", "4.910 s", "-90 ms", "off"],
        ["1.50 s", "1.500 s", "+0 ms", "ok"],
    ]
    assert flagged == 1 and badge.lower() == "1 pause off"
    assert len(links) == 3 and all(link.startswith("file:") for link in links)
