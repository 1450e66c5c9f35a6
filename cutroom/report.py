"""The campaign report: one self-contained HTML page a marketer can open, share and print."""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from functools import cache
from urllib.parse import quote

import jinja2

from cutroom import __version__
from cutroom.assets import Asset
from cutroom.manifest import Manifest, StoryStatus
from cutroom.storage import S3Storage, Storage, campaign_prefix

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


def report_link_for(storage: Storage, key: str, expires_s: int = 604800) -> Callable[[str], str]:
    """Hrefs for a report stored at `key`: paths relative to the report in a folder; on S3, presigned GET links
    valid for `expires_s` (S3 allows at most seven days), since a bucket is rarely public."""
    if isinstance(storage, S3Storage):
        return lambda uri: storage.presigned_url(storage.key_of(uri), expires_s)
    folder = posixpath.dirname(key)

    def link(uri: str) -> str:
        return quote(posixpath.relpath(storage.key_of(uri), folder))

    return link


def render_report(manifest: Manifest, link: Callable[[str], str]) -> str:
    """The report as HTML; `link` turns an asset or export URI into an href (relative path, presigned URL)."""
    titles = {s.id: s.title for s in manifest.plan.stories}
    assets = manifest.assets
    stories = [
        {
            "result": result,
            "plan": manifest.plan.story(result.story_id),
            "best": result.keyframe.sha256 if result.keyframe else None,
        }
        for result in manifest.stories
    ]
    return _template().render(
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


@cache
def _template() -> jinja2.Template:
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
        score=_score,
        channel=lambda c: CHANNEL_NAMES.get(str(c), str(c)),
        kind=lambda k: KIND_NAMES.get(str(k), str(k)),
        label=lambda s: str(s).replace("_", " "),
    )
    env.globals["percent"] = _percent
    return env.get_template("report.html.j2")
