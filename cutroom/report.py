"""The reports: self-contained HTML pages a marketer can open, share and print: a campaign's, a script's, a
long-form narration's. They share one stylesheet and one way of linking media (see report_link_for)."""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from itertools import groupby
from urllib.parse import quote

import jinja2

from cutroom import __version__
from cutroom.assembly import caption_phrases
from cutroom.assets import Asset
from cutroom.longform import LongformAudio
from cutroom.manifest import Manifest, StoryStatus
from cutroom.script import SceneStatus, ScriptManifest
from cutroom.storage import S3Storage, Storage, campaign_prefix

#: Turns a stored media URI into an href the page can open.
Link = Callable[[str], str]

CHANNEL_NAMES = {
    "instagram": "Instagram",
    "tiktok": "TikTok",
    "youtube": "YouTube",
    "linkedin": "LinkedIn",
    "x": "X",
    "facebook": "Facebook",
    "email": "Email",
}
KIND_NAMES = {"image": "keyframe", "video": "clip", "speech": "voice-over"}


def report_key(campaign_id: str) -> str:
    return f"{campaign_prefix(campaign_id)}/index.html"


def report_link_for(storage: Storage, key: str, expires_s: int = 604800) -> Link:
    """Hrefs for a report stored at `key`: paths relative to the report in a folder; on S3, presigned GET links
    valid for `expires_s` (S3 allows at most seven days), since a bucket is rarely public."""
    if isinstance(storage, S3Storage):
        return lambda uri: storage.presigned_url(storage.key_of(uri), expires_s)
    folder = posixpath.dirname(key)

    def link(uri: str) -> str:
        return quote(posixpath.relpath(storage.key_of(uri), folder))

    return link


def campaign_videos(manifest: Manifest) -> dict[str, str | None]:
    """Every video the campaign report plays (reels and clips), URI → sha256: what needs a poster."""
    reels = {e.uri: e.sha256 for e in manifest.exports}
    return reels | {a.uri: a.sha256 for story in manifest.stories for a in story.clips}


def script_videos(manifest: ScriptManifest) -> dict[str, str | None]:
    """Every video the script report plays (the stitched cut and each scene's), URI → sha256 (not recorded)."""
    videos = [manifest.video, *(scene.video for scene in manifest.scenes)]
    return dict.fromkeys(uri for uri in videos if uri)


def render_report(manifest: Manifest, link: Link, posters: Mapping[str, str] | None = None) -> Iterator[str]:
    """The campaign report as HTML, in the pieces it is rendered in (at 10,000 stories the page is ≈ 50 MB);
    `link` turns an asset or export URI into an href (relative path, presigned URL); `posters` maps a video's
    URI to its poster's (cutroom.posters): without one a player shows black."""
    planned = {s.id: s for s in manifest.plan.stories}  # by id: a lookup per story, not a scan (10,000: 3 s)
    titles = {story_id: s.title for story_id, s in planned.items()}
    assets = manifest.assets
    stories = [
        {
            "result": result,
            "plan": planned[result.story_id],
            "best": result.keyframe.sha256 if result.keyframe else None,
        }
        for result in manifest.stories
    ]
    return _template("report.html.j2").generate(
        m=manifest,
        stories=stories,
        assets=assets,
        titles=titles,
        complete=sum(s.status == StoryStatus.complete for s in manifest.stories),
        failed=[item["plan"] for item in stories if item["result"].status == StoryStatus.failed],
        review=[item["plan"] for item in stories if item["result"].status == StoryStatus.needs_review],
        passed_over=sorted({note for a in assets for note in a.passed_over}),
        asset_cost=sum(a.cost_usd for a in assets),
        reused=lambda a: _reused(manifest, a),
        link=link,
        posters=posters or {},
        version=__version__,
    )


def render_script_report(
    manifest: ScriptManifest, link: Link, posters: Mapping[str, str] | None = None
) -> Iterator[str]:
    """The script report as HTML, in pieces: the stitched cut, then each scene's status, video, voice and
    caption lines."""
    return _template("script.html.j2").generate(
        m=manifest,
        complete=[s for s in manifest.scenes if s.status is SceneStatus.complete],
        failed=[s for s in manifest.scenes if s.status is SceneStatus.failed],
        captions={s.id: caption_phrases(s.words) for s in manifest.scenes},
        link=link,
        posters=posters or {},
        version=__version__,
    )


def render_longform_report(made: LongformAudio, campaign_id: str, link: Link) -> Iterator[str]:
    """The long-form report as HTML, in pieces: the master, each scene's player and clauses, every pause as
    measured."""
    # The sheet names each clause's scene; the scene files are in the same order, one per run of a title (two
    # scenes in a row with one title read as one, under the first one's file).
    runs = [list(run) for _, run in groupby(made.master.sheet.segments, key=lambda s: s.scene)]
    return _template("longform.html.j2").generate(
        made=made,
        campaign_id=campaign_id,
        scenes=[
            {"title": r[0].scene, "uri": uri, "segments": r}
            for r, uri in zip(runs, made.master.scenes, strict=False)
        ],
        off=[p for p in made.report.pauses if not p.ok],
        link=link,
        posters={},
        version=__version__,
    )


def _reused(manifest: Manifest, asset: Asset) -> bool:
    return bool(manifest.run_id and asset.run_id and asset.run_id != manifest.run_id)


def _usd(value: float) -> str:
    # Image calls cost fractions of a cent: show them rather than a misleading $0.00.
    return f"${value:,.3f}" if 0 < value < 0.01 else f"${value:,.2f}"


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f} s"


def _score(value: float) -> str:
    return f"{value:.0f}"


def _percent(part: float, whole: float) -> str:
    share = 0.0 if whole <= 0 else max(0.0, min(100.0, 100 * part / whole))
    return f"{share:.1f}%"


def _clock(value: float) -> str:
    return f"{int(value // 60)}:{value % 60:05.2f}"


def _ms(value: float) -> str:
    return f"{value * 1000:.0f} ms"


def _template(name: str) -> jinja2.Template:
    return _environment().get_template(name)


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("cutroom", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        usd=_usd,
        seconds=_seconds,
        clock=_clock,
        ms=_ms,
        score=_score,
        channel=lambda c: CHANNEL_NAMES.get(str(c), str(c)),
        kind=lambda k: KIND_NAMES.get(str(k), str(k)),
        label=lambda s: str(s).replace("_", " "),
    )
    env.globals["percent"] = _percent
    return env
