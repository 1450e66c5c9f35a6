"""The HTML report, checked in a real headless chromium: clean load, real media, escaped user text."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest
from browser import Chromium
from PIL import Image, ImageDraw, ImageStat

from cutroom.assets import Asset, AssetKind, Score
from cutroom.brief import Brief
from cutroom.channels import Aspect, Channel
from cutroom.fonts import font
from cutroom.manifest import CampaignStatus, Export, LedgerSummary, Manifest, StoryResult, StoryStatus
from cutroom.media import run_ffmpeg
from cutroom.plan import Copy, Plan, Shot, Story, StoryType
from cutroom.posters import make_posters
from cutroom.report import campaign_videos, render_report, report_key, report_link_for
from cutroom.storage import LocalStorage, asset_key, export_key, sha256_bytes

#: Tests of this file run on one worker: its module fixtures are costly: one worker builds them once.
pytestmark = pytest.mark.xdist_group("report")

CAMPAIGN, CID = "Aurora Launch", "aurora-launch"
PALETTE = ["#0B1F3A", "#FF6B35", "#F7F3E9"]
PROMPTS = [
    "Aurora headphones on a rocky shore at dawn, brand navy and orange, soft fog",
    "Aurora headphones on a rocky shore at dawn, orange rim light, crisp product focus",
    "Close-up of Aurora headphones on wet basalt at sunrise, orange glow, navy sky, sharp logo",
]
SCORES = [
    Score(total=61, criteria={"prompt_match": 70, "brand_palette": 52, "sharpness": 64}),
    Score(total=78, criteria={"prompt_match": 81, "brand_palette": 74, "sharpness": 79}),
    Score(total=91, criteria={"prompt_match": 93, "brand_palette": 90, "sharpness": 88}),
]
FAILURE = (
    "Clip generation failed at shot 1 of 1: the video provider refused the prompt under its content policy."
)
# 3 × $0.04 keyframes + 2 × $0.25 clips + $0.02 voice-over + $0.04 for the failed story's keyframe
COST_TOTAL = "$0.68"
H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"]
MODELS = {
    AssetKind.image: ("local", "brand-render"),
    AssetKind.video: ("luma", "ray-2"),
    AssetKind.speech: ("local", "espeak-ng"),
}


def brief(goal: str = "Sell out the first batch of Aurora headphones in launch week") -> Brief:
    return Brief(
        campaign=CAMPAIGN,
        brand={"name": "Northwind Audio", "palette": PALETTE},
        goal=goal,
        audience="Commuters aged 25-40 who care about sound and design",
        channels=[Channel.instagram, Channel.linkedin],
        timeline="launch week of 3 March",
        budget_usd=20,
    )


def plan() -> Plan:
    copy = Copy(headline="Hear the dawn", body="Forty hours of quiet, in your pocket.", cta="Pre-order now")
    hero = Story(
        id="hero-reel",
        title="Dawn on the shore",
        type=StoryType.video,
        channel=Channel.instagram,
        objective="Show the headphones in the brand's colours",
        copy=copy,
        voice_over="Forty hours of quiet. Aurora, from Northwind.",
        keyframe_prompt=PROMPTS[0],
        shots=[
            Shot(prompt="Slow push-in on the headphones", duration_s=1, aspect=Aspect.vertical),
            Shot(prompt="Pan along the shoreline", duration_s=1, aspect=Aspect.vertical),
        ],
    )
    teaser = Story(
        id="commute-teaser",
        title="Built for the commute",
        type=StoryType.video,
        channel=Channel.linkedin,
        objective="Reach commuting professionals",
        copy=copy,
        keyframe_prompt="Aurora headphones on a train seat",
        shots=[Shot(prompt="Morning light through a train window", duration_s=1, aspect=Aspect.square)],
    )
    return Plan(campaign_id=CID, campaign=CAMPAIGN, stories=[hero, teaser])


def png(size: tuple[int, int], top: str, bottom: str, label: str) -> bytes:
    """A brand-coloured gradient with a label: a stand-in keyframe."""
    start, end = (Image.new("RGB", (1, 1), c).getpixel((0, 0)) for c in (top, bottom))
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    for y in range(size[1]):
        colour = tuple(round(a + (b - a) * y / size[1]) for a, b in zip(start, end, strict=True))
        draw.line([(0, y), (size[0], y)], fill=colour)
    draw.text((24, size[1] - 80), label, font=font(34), fill="#F7F3E9")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def ffmpeg(work: Path, name: str, args: list[str]) -> bytes:
    run_ffmpeg([*args, str(work / name)], what=f"making test media {name}")
    return (work / name).read_bytes()


def mp4(work: Path, name: str, seed: int, seconds: float) -> bytes:
    picture = f"gradients=s=360x640:r=12:c0=0x0B1F3A:c1=0xFF6B35:seed={seed}:d={seconds}:speed=0.05"
    sound = f"sine=frequency=330:duration={seconds}"
    return ffmpeg(work, name, ["-f", "lavfi", "-i", picture, "-f", "lavfi", "-i", sound, *H264])


class Campaign:
    """Real media in a LocalStorage, laid out as a campaign run leaves it."""

    def __init__(self, root: Path):
        self.storage = LocalStorage(root / "out")
        work = root / "work"
        work.mkdir()
        self.candidates = [
            self.store(
                "hero-reel",
                AssetKind.image,
                png((360, 640), *PALETTE[:2], f"Try {i + 1}"),
                "image/png",
                prompt=PROMPTS[i],
                iteration=i + 1,
                width=360,
                height=640,
                cost_usd=0.04,
                score=SCORES[i],
            )
            for i in range(3)
        ]
        self.candidates[0].run_id = "run-1"  # made by an earlier run, reused by this one
        self.clips = [
            self.store(
                "hero-reel",
                AssetKind.video,
                mp4(work, f"clip{i}.mp4", i, 1),
                "video/mp4",
                prompt=shot.prompt,
                width=360,
                height=640,
                duration_s=1.0,
                cost_usd=0.25,
            )
            for i, shot in enumerate(plan().stories[0].shots)
        ]
        wav = ffmpeg(work, "voice.wav", ["-f", "lavfi", "-i", "sine=frequency=220:duration=2", "-ac", "1"])
        self.voice = self.store(
            "hero-reel",
            AssetKind.speech,
            wav,
            "audio/wav",
            prompt=plan().stories[0].voice_over,
            duration_s=2.0,
            cost_usd=0.02,
        )
        self.failed_keyframe = self.store(
            "commute-teaser",
            AssetKind.image,
            png((480, 480), *PALETTE[1::-1], "Try 1"),
            "image/png",
            prompt="Aurora headphones on a train seat",
            width=480,
            height=480,
            cost_usd=0.04,
            score=Score(total=72, criteria={"prompt_match": 75, "brand_palette": 69}),
        )
        reel = mp4(work, "reel.mp4", 7, 2)
        self.reel_uri = self.storage.put_bytes(export_key(CID, "instagram", "9x16"), reel, "video/mp4")
        self.reel = Export(
            channel=Channel.instagram,
            aspect=Aspect.vertical,
            uri=self.reel_uri,
            sha256=sha256_bytes(reel),
            duration_s=2.0,
            width=360,
            height=640,
            stories=["hero-reel"],
        )

    def store(self, story: str, kind: AssetKind, data: bytes, mime: str, **fields: object) -> Asset:
        sha = sha256_bytes(data)
        uri = self.storage.put_bytes(asset_key(CID, story, kind, sha, mime), data, mime)
        provider, model = MODELS[kind]
        fields.setdefault("run_id", "run-2")
        return Asset(
            spec_key=sha,
            kind=kind,
            provider=provider,
            model=model,
            uri=uri,
            sha256=sha,
            mime=mime,
            story_id=story,
            **fields,
        )

    def manifest(self, brief: Brief, candidates: list[Asset] | None = None) -> Manifest:
        candidates = candidates or self.candidates
        hero = StoryResult(
            story_id="hero-reel",
            status=StoryStatus.complete,
            keyframe=candidates[2],
            candidates=candidates,
            clips=self.clips,
            voice=self.voice,
        )
        teaser = StoryResult(
            story_id="commute-teaser",
            status=StoryStatus.failed,
            error=FAILURE,
            candidates=[self.failed_keyframe],
        )
        return Manifest(
            campaign=CAMPAIGN,
            campaign_id=CID,
            status=CampaignStatus.partial,
            run_id="run-2",
            created_at=datetime(2026, 3, 3, 9, 30, tzinfo=UTC),
            brief=brief,
            plan=plan(),
            stories=[hero, teaser],
            exports=[self.reel],
            reused_assets=1,
            ledger=LedgerSummary(budget_usd=20, estimated_usd=1.10, spent_usd=0.78),
        )

    def posters(self, manifest: Manifest) -> dict[str, str]:
        return make_posters(self.storage, CID, campaign_videos(manifest))

    def write_report(self, manifest: Manifest) -> Path:
        key = report_key(CID)
        html = "".join(render_report(manifest, report_link_for(self.storage, key), self.posters(manifest)))
        self.storage.put_bytes(key, html.encode(), "text/html")
        return self.storage.local_path(key)


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Campaign:
    return Campaign(tmp_path_factory.mktemp("report"))


class MediaSources(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [value for name, value in attrs if name in ("src", "poster") and value]


MEDIA_OK = """[...document.querySelectorAll('img, video, audio')]
  .map(e => e.tagName === 'IMG' ? e.naturalWidth > 0 : e.readyState >= 1 && !e.error)"""
STATUSES = """Object.fromEntries([...document.querySelectorAll('section[id^=story-]')]
  .map(s => [s.id, s.querySelector('.badge').textContent]))"""
HERO_FIGURES = "[...document.querySelectorAll('#story-hero-reel figure.shot')].map(f => f.innerText)"
BEST = "[...document.querySelectorAll('figure.shot')].map(f => f.classList.contains('best'))"


def test_report_loads_clean_and_shows_the_campaign(campaign: Campaign, tmp_path: Path) -> None:
    path = campaign.write_report(campaign.manifest(brief()))
    html = path.read_text()
    assert str(campaign.storage.root) not in html and "file:" not in html, "a local path leaked into the page"
    parser = MediaSources()
    parser.feed(html)
    assert len(parser.found) == 11  # the reel, 4 keyframes, 2 clips, 1 voice-over; the 3 videos' posters
    assert all((path.parent / unquote(src)).is_file() for src in parser.found), parser.found

    with Chromium() as browser:
        with browser.page(path) as page:
            assert page.problems == []
            shot = page.screenshot(tmp_path / "report.png")
            posters, black = page.poster_widths(), page.black_videos(shot)
            text = page.evaluate("document.body.innerText")
            lazy = page.evaluate("[...document.querySelectorAll('video, audio')].map(m => m.preload)")
            page.evaluate(
                "document.querySelectorAll('[preload=none]').forEach(m => { m.preload = 'metadata'; m.load(); })"
            )
            page.wait_settled(20)
            media, statuses = page.evaluate(MEDIA_OK), page.evaluate(STATUSES)
            figures, best = page.evaluate(HERO_FIGURES), page.evaluate(BEST)
            total = page.evaluate("document.querySelector('tfoot').innerText")
        with browser.page(path, width=390, height=844) as phone:
            assert phone.problems == []
            sideways = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            phone.screenshot(tmp_path / "report-phone.png")

    image = Image.open(io.BytesIO(shot)).convert("RGB")
    assert image.width == 1280 and image.height > 2000
    assert max(ImageStat.Stat(image).stddev) > 20, "the screenshot looks blank"
    assert media == [True] * 8, "every image, video and audio element decodes in chromium"
    assert posters == [360] * 3 and black == [], "every video shows a poster frame, not a black box"
    assert lazy == ["metadata", "none", "none", "none"], "only reels preload; story media loads when played"
    assert sideways <= 0, "the page scrolls sideways on a phone"

    assert CAMPAIGN in text and "Northwind Audio" in text
    assert statuses == {"story-hero-reel": "complete", "story-commute-teaser": "failed"}
    assert FAILURE in text
    assert best == [False, False, True, False]
    for figure, prompt, score in zip(figures, PROMPTS, SCORES, strict=True):
        assert prompt in figure and f"{score.total:.0f} / 100" in figure
        for name, value in score.criteria.items():
            assert re.search(rf"{name.replace('_', ' ')}\s+{value:.0f}\b", figure), (name, figure)
    assert COST_TOTAL in total
    assert all(amount in text for amount in ("$0.78", "$20.00", "$1.10"))


def test_brief_text_is_escaped_and_runs_nothing(campaign: Campaign) -> None:
    goal = "Win <script>alert(1)</script> & <img src=x onerror=alert(2)> fans"
    path = campaign.write_report(campaign.manifest(brief(goal)))
    assert "<script>" not in path.read_text()

    with Chromium() as browser, browser.page(path) as page:
        assert page.problems == []  # an alert() would be listed here as a dialog
        assert page.evaluate("document.scripts.length + document.querySelectorAll('[onerror]').length") == 0
        assert goal in page.evaluate("document.body.innerText")


def test_the_browser_check_catches_a_missing_file_and_a_remote_request(campaign: Campaign) -> None:
    gone = campaign.candidates[1].model_copy(
        update={"uri": campaign.storage.uri(f"campaigns/{CID}/gone.png")}
    )
    candidates = [campaign.candidates[0], gone, campaign.candidates[2]]
    missing = campaign.write_report(campaign.manifest(brief(), candidates))
    local = report_link_for(campaign.storage, report_key(CID))
    remote = campaign.storage.local_path(f"campaigns/{CID}/remote.html")
    remote.write_text(
        "".join(
            render_report(
                campaign.manifest(brief()),
                lambda uri: f"https://cdn.example.com/{local(uri)}",
                campaign.posters(campaign.manifest(brief())),
            )
        )
    )

    with Chromium() as browser:
        with browser.page(missing) as page:
            assert any(load.endswith("/gone.png: net::ERR_FILE_NOT_FOUND") for load in page.failed_loads)
        with browser.page(remote) as page:
            # the reel, 4 keyframes and 3 posters; clips and the voice-over load only when played
            assert len(set(page.external_requests)) == 8 and page.problems != []


def test_local_links_are_relative_and_refuse_anything_else(campaign: Campaign) -> None:
    link = report_link_for(campaign.storage, report_key(CID))
    assert link(campaign.reel_uri) == "exports/instagram-9x16.mp4"
    with pytest.raises(ValueError):
        link("https://cdn.example.com/x.png")
