"""`cutroom run`: a whole campaign, shown story by story as it goes, summed up when it ends."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from cli import inputs, stopping
from cli.errors import friendly
from cli.prefect_setup import configured_prefect
from cli.terminal import console
from cutroom.manifest import CampaignStatus, Manifest


class StoryBoard:
    """The live per-story view of a running campaign."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[str, str]] = {}

    def __call__(self, news: Any) -> None:
        state = (
            "[green]done[/]"
            if news.done and not news.failed
            else "[red]failed[/]"
            if news.failed
            else news.step
        )
        self.rows[news.story_id] = (state, news.detail)

    def __rich__(self) -> Table:
        table = Table(title="Stories", expand=False)
        for column in ("story", "step", "detail"):
            table.add_column(column)
        for story_id, (step, detail) in sorted(self.rows.items()):
            table.add_row(story_id, step, detail)
        if not self.rows:
            table.add_row("…", "planning", "")
        return table


@friendly
def run(
    brief: inputs.BriefFile,
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            "--storage",
            help="Where the campaign is written: a folder, or s3://bucket/prefix (endpoint and keys from "
            "AWS_*). Default: CUTROOM_STORAGE, else cutroom-out.",
        ),
    ] = None,
    campaign_id: inputs.CampaignIdOption = None,
    resume: Annotated[
        bool,
        typer.Option(
            help="Continue the campaign that holds the folder, even if this brief names it otherwise."
        ),
    ] = False,
    verbose: Annotated[bool, typer.Option(help="Show Prefect's own logs too.")] = False,
) -> None:
    """Plan and make a whole campaign: stories, reels, manifest and report."""
    from cutroom import progress
    from cutroom.settings import settings

    parsed = inputs.brief(brief, campaign_id)
    location = inputs.location(out or settings().out)
    inputs.claimed(location, parsed, resume)  # before Prefect starts: a taken folder costs nothing
    board = StoryBoard()
    stop = progress.listen(board)
    try:
        with (
            configured_prefect(location, verbose),
            Live(board, console=console, refresh_per_second=4, transient=True),
        ):
            from flows.campaign import campaign

            manifest: Manifest = stopping.run_flow(lambda: campaign(parsed, location, resume))
    finally:
        stop()
    _summarise(manifest, location)
    if manifest.status is CampaignStatus.failed or manifest.failed_reels:
        raise typer.Exit(1)


def _summarise(manifest: Manifest, location: str) -> None:
    titles = {s.id: s for s in manifest.plan.stories}
    table = Table(title=f"{manifest.campaign}: {manifest.status.value}")
    table.add_column("story", no_wrap=True)
    for column in ("type", "channel", "status", "best score", "rounds", "clips", "cost"):
        table.add_column(column)
    for result in manifest.stories:
        story = titles[result.story_id]
        best = f"{result.keyframe.score.total:.0f}" if result.keyframe and result.keyframe.score else "–"
        status = {
            "complete": "[green]complete[/]",
            "over_budget": "[yellow]over budget[/]",
            "needs_review": "[yellow]needs review[/]",
            "dropped": "[yellow]dropped[/]",
        }.get(result.status.value, "[red]failed[/]")
        cost = sum(a.cost_usd for a in result.assets)
        table.add_row(
            story.id, story.type.value, story.channel.value, status, best,
            str(len(result.candidates)), str(len(result.clips)), f"${cost:.2f}",
        )  # fmt: skip
    console.print(table)
    for result in manifest.stories:
        if result.error:
            console.print(f"[red]{result.story_id}[/] was left out: {result.error}", highlight=False)
    for export in manifest.exports:
        console.print(f"  reel {export.channel.value} {export.aspect.value}: {export.duration_s:.1f} s")
    for reel in manifest.failed_reels:
        console.print(
            f"[red]reel {reel.channel.value} {reel.aspect.value} failed:[/] {escape(reel.error)}\n"
            "  Its stories are kept: run the same command again once that is fixed, and they are reused.",
            highlight=False,
        )
    total = len(manifest.assets)
    if manifest.reused_assets:
        fresh = total - manifest.reused_assets
        console.print(
            f"Reused {manifest.reused_assets} of {total} assets from earlier runs"
            + (" — nothing new was generated." if fresh == 0 else f"; generated {fresh} new.")
        )
    ledger = manifest.ledger
    console.print(
        f"Spent ${ledger.spent_usd:.2f} of ${ledger.budget_usd:.2f} (estimate ${ledger.estimated_usd:.2f})."
    )
    if ledger.over_budget:
        console.print(
            f"[yellow]Left out to keep to the budget:[/] {', '.join(ledger.over_budget)}", highlight=False
        )
    from cutroom.report import report_key
    from cutroom.storage import S3Storage, open_storage
    from tasks.publish import manifest_key

    storage = open_storage(location)
    report, record = report_key(manifest.campaign_id), manifest_key(manifest.campaign_id)
    console.print(f"Report: {_shown(storage.uri(report))}", highlight=False)
    if isinstance(storage, S3Storage):
        console.print(f"  open: {storage.presigned_url(report, 3600)}", highlight=False, soft_wrap=True)
    console.print(f"Manifest: {_shown(storage.uri(record))}", highlight=False)


def _shown(uri: str) -> str:
    """A location as a user types it: a plain path for local files."""
    from cutroom.storage import path_of

    return str(path_of(uri)) if uri.startswith("file:") else uri
