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
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
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
    return env.from_string(_TEMPLATE)


_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy"
      content="script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'">
<meta name="referrer" content="no-referrer">
<meta name="generator" content="Cutroom {{ version }}">
<link rel="icon" href="data:,">
<title>{{ m.campaign }} — campaign report</title>
<style>
:root {
  --ink: #1b2130; --muted: #5d6677; --line: #e2e5eb; --bg: #f4f5f8; --card: #fff; --accent: #3a6fd8;
  --ok: #117a3d; --ok-bg: #e2f4e8; --warn: #8a5800; --warn-bg: #fff1d1; --bad: #b42318; --bad-bg: #fdebe9;
  --radius: 12px; --mono: ui-monospace, Menlo, Consolas, monospace;
}
* { box-sizing: border-box; }
body {
  margin: 0; color: var(--ink); background: var(--bg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
a { color: inherit; }
.wrap { max-width: 1180px; margin: 0 auto; padding: 0 24px; }
h1, h2, h3, h4, p { margin: 0; }
h1 { font-size: 32px; line-height: 1.15; letter-spacing: -0.02em; }
h2 { font-size: 20px; margin: 36px 0 14px; }
h3 { font-size: 22px; line-height: 1.2; }
h4 {
  font-size: 12px; text-transform: uppercase; letter-spacing: .07em; color: var(--muted);
  margin: 24px 0 10px;
}
.muted { color: var(--muted); }
.small { font-size: 13px; }
.empty { color: var(--muted); font-style: italic; }
code { font-family: var(--mono); font-size: 12px; }

.palette-strip { display: flex; height: 6px; }
.palette-strip span { flex: 1; }
.masthead { background: var(--card); border-bottom: 1px solid var(--line); }
.masthead .wrap { padding-top: 28px; padding-bottom: 26px; }
.eyebrow {
  font-size: 12px; text-transform: uppercase; letter-spacing: .08em; color: var(--muted); margin-bottom: 6px;
}
.title-row { display: flex; align-items: center; gap: 14px; flex-wrap: wrap; }
.badge {
  display: inline-block; padding: 3px 11px; border-radius: 999px; font-size: 12px; font-weight: 700;
  text-transform: uppercase; letter-spacing: .05em; white-space: nowrap;
}
.badge.complete { color: var(--ok); background: var(--ok-bg); }
.badge.partial { color: var(--warn); background: var(--warn-bg); }
.badge.failed { color: var(--bad); background: var(--bad-bg); }
.tag {
  display: inline-block; padding: 1px 8px; border-radius: 6px; font-size: 12px; white-space: nowrap;
  background: var(--bg); border: 1px solid var(--line); color: var(--muted);
}
.brief { display: grid; grid-template-columns: minmax(220px, 1fr) 2fr; gap: 18px 40px; margin-top: 22px; }
.brief dl { margin: 0; display: grid; grid-template-columns: max-content 1fr; gap: 6px 16px; }
.brief dt { color: var(--muted); font-size: 13px; padding-top: 1px; }
.brief dd { margin: 0; overflow-wrap: anywhere; }
.brand-name { font-size: 18px; font-weight: 700; }
.swatches { display: flex; flex-wrap: wrap; gap: 10px; margin-top: 12px; }
.swatch { display: flex; align-items: center; gap: 6px; font: 12px var(--mono); color: var(--muted); }
.swatch i { width: 22px; height: 22px; border-radius: 6px; border: 1px solid rgba(0, 0, 0, .12); }

.summary { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr)); gap: 14px; }
.summary { margin-top: 24px; }
.stat { background: var(--card); border: 1px solid var(--line); border-radius: var(--radius); }
.stat { padding: 14px 18px; }
.stat .label { font-size: 12px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); }
.stat .value { font-size: 26px; font-weight: 700; margin-top: 2px; font-variant-numeric: tabular-nums; }
.stat .of { font-size: 14px; font-weight: 500; color: var(--muted); }
.stat .note { font-size: 13px; margin-top: 4px; }
.ok { color: var(--ok); }
.bad { color: var(--bad); }
.meter { height: 6px; border-radius: 3px; background: var(--line); margin-top: 10px; overflow: hidden; }
.meter span { display: block; height: 100%; background: var(--ink); }

.card {
  background: var(--card); border: 1px solid var(--line); border-radius: var(--radius);
  padding: 22px 24px; margin-bottom: 18px;
}
.media-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 16px; }
.media-grid.reels { grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); }
figure { margin: 0; }
video { display: block; width: 100%; max-height: 640px; background: #0d1017; border-radius: 8px; }
audio { display: block; width: 100%; margin-top: 10px; }
figcaption { margin-top: 8px; font-size: 13px; }
figcaption strong { font-size: 14px; }

.story-head { display: flex; justify-content: space-between; align-items: flex-start; gap: 16px; }
.story-meta { display: flex; gap: 6px; flex-wrap: wrap; margin-top: 8px; }
.objective { margin-top: 10px; color: var(--muted); }
.error {
  margin-top: 16px; padding: 12px 16px; border-radius: 8px; background: var(--bad-bg); color: var(--bad);
  border-left: 4px solid var(--bad); white-space: pre-wrap; overflow-wrap: anywhere;
}
.error strong { display: block; margin-bottom: 2px; }
.two-up { display: grid; grid-template-columns: 3fr 2fr; gap: 0 28px; }
.copy { padding: 16px 18px; border-radius: 10px; background: var(--bg); }
.copy .headline { font-size: 20px; font-weight: 700; line-height: 1.25; }
.copy .body { margin-top: 6px; }
.cta {
  display: inline-block; margin-top: 12px; padding: 6px 14px; border-radius: 999px;
  background: var(--ink); color: #fff; font-weight: 600; font-size: 14px;
}
.voice { font-style: italic; }

.shot {
  display: flex; flex-direction: column; overflow: hidden;
  border: 1px solid var(--line); border-radius: 10px; background: var(--card);
}
.shot.best { border-color: var(--ok); box-shadow: 0 0 0 2px var(--ok); }
.shot img {
  display: block; width: 100%; height: auto; max-height: 420px; object-fit: contain; background: #e9ecf1;
}
.shot .info { margin: 0; padding: 12px 14px 14px; display: flex; flex-direction: column; gap: 8px; }
.shot .top { display: flex; align-items: baseline; gap: 8px; }
.shot .total { margin-left: auto; font-size: 24px; font-weight: 700; font-variant-numeric: tabular-nums; }
.shot .total small { font-size: 12px; font-weight: 500; color: var(--muted); }
.best-mark {
  color: var(--ok); background: var(--ok-bg); font-size: 11px; font-weight: 700; padding: 2px 8px;
  border-radius: 999px; text-transform: uppercase; letter-spacing: .05em;
}
.prompt { font-size: 12.5px; color: var(--muted); overflow-wrap: anywhere; }
.criteria {
  display: grid; grid-template-columns: 1fr 80px 26px; gap: 3px 8px; align-items: center; font-size: 12px;
}
.criteria .bar { height: 5px; border-radius: 3px; background: var(--line); overflow: hidden; }
.criteria .bar span { display: block; height: 100%; background: var(--accent); }
.criteria .v { text-align: right; font-variant-numeric: tabular-nums; }

.table-scroll { overflow-x: auto; padding: 8px 16px; }
table { width: 100%; border-collapse: collapse; font-size: 14px; }
th, td { padding: 8px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { font-size: 12px; font-weight: 600; text-transform: uppercase; letter-spacing: .05em; }
th { color: var(--muted); }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tfoot td { font-weight: 700; border-bottom: 0; }
footer { margin: 30px 0 40px; font-size: 12px; color: var(--muted); }

@media (max-width: 760px) {
  .wrap { padding: 0 14px; }
  h1 { font-size: 26px; }
  .brief, .two-up { grid-template-columns: 1fr; }
  .card { padding: 16px; }
  .table-scroll { padding: 4px 8px; }
  video { max-height: 70vh; }
}
@media print {
  body { background: #fff; font-size: 12px; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  .masthead { border: 0; }
  .card, .stat, .shot, figure, tr { break-inside: avoid; }
  audio { display: none; }
  video { max-height: 320px; }
}
</style>
</head>
<body>
<div class="palette-strip">
  {% for colour in m.brief.brand.palette %}<span style="background: {{ colour }}"></span>{% endfor %}
</div>
<header class="masthead">
  <div class="wrap">
    <div class="eyebrow">Campaign report</div>
    <div class="title-row">
      <h1>{{ m.campaign }}</h1>
      <span class="badge {{ m.status.value }}">{{ m.status.value }}</span>
    </div>
    <div class="brief">
      <div>
        <div class="brand-name">{{ m.brief.brand.name }}</div>
        <div class="muted small">Voice: {{ m.brief.brand.voice }}</div>
        <div class="swatches">
          {% for colour in m.brief.brand.palette %}
          <span class="swatch"><i style="background: {{ colour }}"></i>{{ colour }}</span>
          {% endfor %}
        </div>
      </div>
      <dl>
        <dt>Goal</dt><dd>{{ m.brief.goal }}</dd>
        <dt>Audience</dt><dd>{{ m.brief.audience }}</dd>
        <dt>Channels</dt><dd>{{ m.brief.channels | map("channel") | join(", ") }}</dd>
        {% if m.brief.timeline %}
        <dt>Timeline</dt><dd>{{ m.brief.timeline }}</dd>
        {% endif %}
        <dt>Quality bar</dt>
        <dd>
          a score of {{ m.brief.quality_target }} / 100, at most {{ m.brief.max_iterations }} tries per asset
        </dd>
      </dl>
    </div>
  </div>
</header>

<main class="wrap">
  <div class="summary">
    <div class="stat">
      <div class="label">Stories</div>
      <div class="value">{{ complete }} <span class="of">of {{ m.stories | length }} complete</span></div>
      {% if failed %}
      <div class="note bad">{{ failed | length }} failed:
        {% for s in failed %}
        <a href="#story-{{ s.id }}">{{ s.title }}</a>{{ "," if not loop.last }}
        {% endfor %}
      </div>
      {% endif %}
    </div>
    <div class="stat">
      <div class="label">Assets</div>
      <div class="value">{{ assets | length }} <span class="of">made</span></div>
      <div class="note muted">{{ m.reused_assets }} reused from earlier runs</div>
    </div>
    <div class="stat">
      <div class="label">Spent</div>
      <div class="value">
        {{ m.ledger.spent_usd | usd }} <span class="of">of {{ m.ledger.budget_usd | usd }}</span>
      </div>
      <div class="meter" title="share of the budget spent">
        <span style="width: {{ percent(m.ledger.spent_usd, m.ledger.budget_usd) }}"></span>
      </div>
    </div>
    <div class="stat">
      <div class="label">Estimated</div>
      <div class="value">{{ m.ledger.estimated_usd | usd }}</div>
      <div class="note muted">forecast before generation</div>
    </div>
  </div>

  <h2>Reels</h2>
  {% if m.exports %}
  <div class="media-grid reels">
    {% for export in m.exports %}
    <figure>
      <video controls preload="metadata" src="{{ link(export.uri) }}"
             style="aspect-ratio: {{ export.width }} / {{ export.height }}"></video>
      <figcaption>
        <strong>{{ export.channel | channel }}</strong>
        · {{ export.aspect.value }} · {{ export.duration_s | seconds }}
        <div class="muted">
          {{ export.width }}×{{ export.height }} ·
          {% for id in export.stories %}{{ titles.get(id, id) }}{{ ", " if not loop.last }}{% endfor %}
        </div>
      </figcaption>
    </figure>
    {% endfor %}
  </div>
  {% else %}
  <p class="empty">No reels were assembled in this run.</p>
  {% endif %}

  <h2>Stories</h2>
  {% for item in stories %}
  {% set r = item.result %}
  {% set s = item.plan %}
  <section class="card" id="story-{{ r.story_id }}">
    <div class="story-head">
      <div>
        <h3>{{ s.title }}</h3>
        <div class="story-meta">
          <span class="tag">{{ s.type.value }}</span>
          <span class="tag">{{ s.channel | channel }}</span>
          {% if s.shots %}
          <span class="tag">{{ s.shots | length }} shot{{ "s" if s.shots | length != 1 }}
            · {{ s.duration_s | seconds }}</span>
          {% endif %}
        </div>
      </div>
      <span class="badge {{ r.status.value }}">{{ r.status.value }}</span>
    </div>
    <p class="objective">{{ s.objective }}</p>
    {% if r.error %}
    <div class="error"><strong>What went wrong</strong>{{ r.error }}</div>
    {% endif %}

    <div class="two-up">
      <div>
        <h4>Copy</h4>
        <div class="copy">
          <div class="headline">{{ s.copy_.headline }}</div>
          <p class="body">{{ s.copy_.body }}</p>
          <span class="cta">{{ s.copy_.cta }}</span>
        </div>
      </div>
      {% if s.voice_over or r.voice %}
      <div>
        <h4>Voice-over</h4>
        {% if s.voice_over %}<p class="voice">“{{ s.voice_over }}”</p>{% endif %}
        {% if r.voice %}
        <audio controls preload="none" src="{{ link(r.voice.uri) }}"></audio>
        <div class="muted small">
          {{ r.voice.provider }} · {{ r.voice.model }} · {{ r.voice.duration_s | seconds }}
        </div>
        {% endif %}
      </div>
      {% endif %}
    </div>

    <h4>Keyframe iterations</h4>
    {% if r.candidates %}
    <div class="media-grid">
      {% for a in r.candidates %}
      {% set best = a.sha256 == item.best %}
      <figure class="shot{{ ' best' if best }}">
        <img src="{{ link(a.uri) }}" alt="Iteration {{ a.iteration }} of {{ s.title }}"
             {% if a.width and a.height %}width="{{ a.width }}" height="{{ a.height }}"{% endif %}>
        <figcaption class="info">
          <div class="top">
            <strong>Iteration {{ a.iteration }}</strong>
            {% if best %}<span class="best-mark">Best</span>{% endif %}
            {% if a.score %}
            <span class="total">{{ a.score.total | score }}<small> / 100</small></span>
            {% endif %}
          </div>
          {% if a.score %}
          <div class="criteria">
            {% for name, value in a.score.criteria.items() %}
            <span>{{ name | label }}</span>
            <span class="bar"><span style="width: {{ percent(value, 100) }}"></span></span>
            <span class="v">{{ value | score }}</span>
            {% endfor %}
          </div>
          {% endif %}
          <p class="prompt">{{ a.prompt }}</p>
          <div class="muted small">
            {{ a.provider }} · {{ a.model }}{% if a.score %} · judged by {{ a.score.judge }}{% endif %}
          </div>
        </figcaption>
      </figure>
      {% endfor %}
    </div>
    {% else %}
    <p class="empty">No keyframe was made.</p>
    {% endif %}

    {% if s.shots or r.clips %}
    <h4>Clips</h4>
    {% if r.clips %}
    <div class="media-grid">
      {% for a in r.clips %}
      <figure>
        <video controls preload="none" src="{{ link(a.uri) }}"
          {% if a.width and a.height %} style="aspect-ratio: {{ a.width }} / {{ a.height }}"{% endif %}>
        </video>
        <figcaption>
          <strong>Clip {{ loop.index }}</strong> · {{ a.duration_s | seconds }}
          {% if a.score %} · score {{ a.score.total | score }}{% endif %}
          <p class="prompt">{{ a.prompt }}</p>
        </figcaption>
      </figure>
      {% endfor %}
    </div>
    {% else %}
    <p class="empty">No clips were made.</p>
    {% endif %}
    {% endif %}
  </section>
  {% endfor %}

  <h2>Costs</h2>
  <div class="card table-scroll">
    <table>
      <thead>
        <tr>
          <th>Story</th><th>Asset</th><th>Provider</th><th>Model</th>
          <th class="num">Iteration</th><th class="num">Cost</th><th class="num">Score</th>
        </tr>
      </thead>
      <tbody>
        {% for a in assets %}
        <tr>
          <td>{{ titles.get(a.story_id, a.story_id or "") }}</td>
          <td>{{ a.kind | kind }}{% if reused(a) %} <span class="tag">reused</span>{% endif %}</td>
          <td>{{ a.provider }}</td>
          <td>{{ a.model }}</td>
          <td class="num">{{ a.iteration }}</td>
          <td class="num">{{ a.cost_usd | usd }}</td>
          <td class="num">{{ a.score.total | score if a.score else "–" }}</td>
        </tr>
        {% else %}
        <tr><td colspan="7" class="empty">No assets were made.</td></tr>
        {% endfor %}
      </tbody>
      <tfoot>
        <tr><td colspan="5">Total</td><td class="num">{{ asset_cost | usd }}</td><td></td></tr>
      </tfoot>
    </table>
  </div>

  <footer>
    Made by Cutroom {{ version }} · campaign <code>{{ m.campaign_id }}</code>
    {% if m.run_id %} · run <code>{{ m.run_id }}</code>{% endif %}
    · {{ m.created_at.strftime("%d %b %Y, %H:%M %Z") }}
  </footer>
</main>
</body>
</html>
"""
