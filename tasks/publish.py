"""Write what a campaign made where people look: manifest.json, the HTML report, Prefect artifacts."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

from cutroom.manifest import Manifest
from cutroom.report import render_report, report_key, report_link_for
from cutroom.settings import settings
from cutroom.storage import campaign_prefix, metadata_key, open_storage


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


@task(name="publish", retries=2, retry_delay_seconds=2)
async def publish(manifest: Manifest, out: str) -> str:
    """Store the manifest and report; returns the report's URI."""
    storage = open_storage(out)
    for story in manifest.stories:
        record = story.model_dump_json(indent=2).encode()
        storage.put_bytes(
            metadata_key(manifest.campaign_id, story.story_id, "story.json"), record, "application/json"
        )
    storage.put_bytes(
        manifest_key(manifest.campaign_id),
        manifest.model_dump_json(indent=2, by_alias=True).encode(),
        "application/json",
    )
    key = report_key(manifest.campaign_id)
    report_uri = storage.put_bytes(
        key,
        render_report(manifest, report_link_for(storage, key, settings().link_expiry_s)).encode(),
        "text/html",
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
