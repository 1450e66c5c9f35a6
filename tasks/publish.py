"""Write what a run made where people look: manifest.json, the HTML reports, Prefect artifacts."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from functools import partial

from prefect import task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.cache_policies import NO_CACHE

from cutroom.longform import LongformAudio
from cutroom.manifest import Manifest, write_manifest
from cutroom.posters import make_posters
from cutroom.report import (
    Link,
    campaign_videos,
    render_longform_report,
    render_report,
    render_script_report,
    report_key,
    report_link_for,
    script_videos,
)
from cutroom.script import ScriptManifest
from cutroom.settings import settings
from cutroom.storage import campaign_prefix, metadata_key, open_storage, put_written
from tasks.longform import longform_key
from tasks.policy import in_thread
from tasks.script import script_key


def manifest_key(campaign_id: str) -> str:
    return f"{campaign_prefix(campaign_id)}/manifest.json"


def _summary(manifest: Manifest, report_uri: str) -> str:
    done = sum(s.status == "complete" for s in manifest.stories)
    lines = [
        f"# {manifest.campaign}: {manifest.status.value}",
        f"{done} of {len(manifest.stories)} stories complete, {len(manifest.assets)} assets "
        f"({manifest.reused_assets} reused), {len(manifest.exports)} reels.",
        f"Spent ${manifest.ledger.spent_usd:.2f} of ${manifest.ledger.budget_usd:.2f} "
        f"(estimated ${manifest.ledger.estimated_usd:.2f}).",
        "",
        f"Report: {report_uri}",
    ]
    failed = [s for s in manifest.stories if s.error]
    if failed:
        lines += ["", "## Stories left out", *[f"- **{s.story_id}**: {s.error}" for s in failed]]
    if manifest.exports:
        lines += [
            "",
            "## Reels",
            *[f"- {e.channel.value} {e.aspect.value}: {e.duration_s:.1f} s" for e in manifest.exports],
        ]
    return "\n".join(lines)


def _write_page(
    out: str,
    campaign_id: str,
    key: str,
    render: Callable[[Link, Mapping[str, str]], Iterator[str]],
    videos: Mapping[str, str | None],
) -> str:
    """Make the page's posters (a rerun finds them made), render it with links that open from where it is
    stored, and store it as it is rendered; returns its URI."""
    storage = open_storage(out)
    posters = make_posters(storage, campaign_id, videos)
    html = render(report_link_for(storage, key, settings().link_expiry_s), posters)
    return put_written(storage, key, lambda fh: fh.writelines(piece.encode() for piece in html), "text/html")


#: Publishing runs anew every time and keeps no result, so it needs no cache key: Prefect's default policy would
#: hash the whole manifest for one (1.9 s at 10,000 stories).
@task(name="publish", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
async def publish(manifest: Manifest, out: str) -> str:
    """Store the manifest and report; returns the report's URI."""
    storage = open_storage(out)
    for story in manifest.stories:
        record = story.model_dump_json(indent=2).encode()
        storage.put_bytes(
            metadata_key(manifest.campaign_id, story.story_id, "story.json"), record, "application/json"
        )
    put_written(
        storage, manifest_key(manifest.campaign_id), partial(write_manifest, manifest), "application/json"
    )
    report_uri = await in_thread(
        _write_page,
        out,
        manifest.campaign_id,
        report_key(manifest.campaign_id),
        partial(render_report, manifest),
        campaign_videos(manifest),
    )
    await acreate_markdown_artifact(
        _summary(manifest, report_uri), key=f"{manifest.campaign_id}-summary", description="Campaign summary"
    )
    await acreate_table_artifact(
        [
            {
                "story": a.story_id,
                "kind": a.kind.value,
                "provider": a.provider,
                "iteration": a.iteration,
                "score": a.score.total if a.score else None,
                "cost_usd": a.cost_usd,
                "sha256": a.sha256[:12],
            }
            for a in manifest.assets
        ],
        key=f"{manifest.campaign_id}-assets",
        description="Every asset the campaign made",
    )
    return report_uri


@task(name="publish-script-report", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
async def publish_script_report(manifest: ScriptManifest, out: str) -> str:
    """Store the script's HTML report beside its manifest, at script/index.html; returns its URI."""
    key = script_key(manifest.campaign_id, "index.html")
    render = partial(render_script_report, manifest)
    return await in_thread(_write_page, out, manifest.campaign_id, key, render, script_videos(manifest))


@task(name="publish-longform-report", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
async def publish_longform_report(made: LongformAudio, out: str, campaign_id: str) -> str:
    """Store the narration's HTML report beside its master, at longform/index.html; returns its URI."""
    key = longform_key(campaign_id, "index.html")

    # Audio only: no video, so no posters.
    def render(link: Link, posters: Mapping[str, str]) -> Iterator[str]:
        return render_longform_report(made, campaign_id, link)

    return await in_thread(_write_page, out, campaign_id, key, render, {})
