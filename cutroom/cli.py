"""The `cutroom` command. The one module of cutroom/ that reaches into flows/, lazily, as the entry point."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from cutroom.assets import AssetKind, Operation
from cutroom.brief import Brief, BriefError, load_brief
from cutroom.channels import Aspect
from cutroom.embedded_server import serve_ours
from cutroom.manifest import CampaignStatus, Manifest
from cutroom.media import MediaError
from cutroom.plan import CameraMotion

app = typer.Typer(
    name="cutroom",
    help="Turn a marketing brief into finished, scored campaign media.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


class UserError(Exception):
    """A mistake the user can fix: one line of what is wrong, one of what to do."""

    def __init__(self, message: str, hint: str = "", code: int = 2):
        self.hint, self.code = hint, code
        super().__init__(message)


def friendly(command: F) -> F:
    """Every mistake a user can make ends in one clear line and a hint, never a traceback."""
    from providers.base import ErrorKind, ProviderError

    hints = {
        ErrorKind.auth: "check the provider's API key",
        ErrorKind.not_configured: "run `cutroom providers` to see what is set up",
        ErrorKind.invalid_input: "check the options against `cutroom generate --help`",
        ErrorKind.insufficient_credits: "top up the provider account or pick another provider",
    }

    @functools.wraps(command)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except BriefError as exc:
            err.print(f"[red]error:[/] {exc.source} is not a usable brief:", highlight=False)
            for problem in exc.problems:
                err.print(f"  • {problem}", highlight=False)
            err.print("[dim]hint: fix the fields above and run again; nothing was generated.[/]")
            raise typer.Exit(2) from None
        except UserError as exc:
            err.print(f"[red]error:[/] {exc}", highlight=False)
            if exc.hint:
                err.print(f"[dim]hint: {exc.hint}[/]", highlight=False)
            raise typer.Exit(exc.code) from None
        except ProviderError as exc:
            err.print(f"[red]error:[/] {exc}", highlight=False)
            err.print(f"[dim]hint: {hints.get(exc.kind, 'try again later')}[/]")
            raise typer.Exit(1) from None
        except (MediaError, OSError) as exc:
            err.print(f"[red]error:[/] {exc}", highlight=False)
            err.print("[dim]hint: check the paths and free disk space; finished work is kept.[/]")
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("[yellow]stopped.[/] Finished work is kept; run the same command again to resume.")
            raise typer.Exit(130) from None

    return guarded  # type: ignore[return-value]


def _brief(path: Path, campaign_id: str | None) -> Brief:
    brief = load_brief(path)
    if campaign_id is not None:
        from cutroom.brief import parse_brief

        brief = parse_brief(
            {**brief.model_dump(mode="json", exclude_none=True), "id": campaign_id}, path.name
        )
    from providers.registry import unknown_preferences

    problems = unknown_preferences(brief.providers)
    if problems:
        raise BriefError(path.name, problems)
    return brief


def _writable(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise UserError(
            f"--out {out} is a file, not a folder", "give a folder path (it is created if missing)"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"cannot create --out {out}: {exc.strerror}", "pick a folder you can write to"
        ) from None
    if not os.access(out, os.W_OK):
        raise UserError(f"cannot write to --out {out}", "pick a folder you can write to")
    return out.resolve()


def _location(text: str) -> str:
    """Where a campaign goes: a local folder (made if missing) or an S3 bucket we can reach."""
    if not text.startswith("s3:"):
        return str(_writable(Path(text)))
    from cutroom.storage import S3Storage

    try:
        storage = S3Storage(text)
        storage.client.head_bucket(Bucket=storage.bucket)
    except ValueError as exc:
        raise UserError(str(exc), "write it as s3://bucket/prefix") from None
    except Exception as exc:  # botocore raises many types here: no endpoint, no credentials, no bucket
        raise UserError(
            f"cannot reach the bucket of {text}: {exc}",
            "check AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and that the bucket exists",
        ) from None
    return text.rstrip("/")


#: Prefect settings a CLI run gives itself and the embedded server it starts (which inherits the environment),
#: unless the environment sets them: offline, and a server that records task states 50 at a time, at least every
#: second, not one SQLite write each — fewer writes for runs being created to wait behind, and less CPU (bench
#: P1, P2: see README, Benchmarks).
PREFECT_DEFAULTS = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "50",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1",
}


@contextlib.contextmanager
def _prefect(location: str, verbose: bool) -> Iterator[None]:
    """Prefect configured for a CLI run: offline, quiet unless asked, results kept beside the campaigns."""
    for name, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(name, value)
    serve_ours()  # without a Prefect server set, the embedded one is ours: no SQLite 503s
    if not verbose:
        # Only the console goes quiet; run logs still reach the Prefect API and UI.
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    from prefect.settings import (
        PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK,
        PREFECT_RESULTS_LOCAL_STORAGE_PATH,
        temporary_settings,
    )

    if location.startswith("s3:"):
        from tasks.results import save_results_block

        slug = asyncio.run(save_results_block(location))
        results = {PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK: slug}
    else:
        results = {PREFECT_RESULTS_LOCAL_STORAGE_PATH: str(Path(location) / ".cutroom" / "results")}
    with temporary_settings(results):
        yield


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


@app.command()
@friendly
def run(
    brief: Annotated[Path, typer.Argument(help="The campaign brief (YAML or JSON).")],
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            "--storage",
            help="Where the campaign is written: a folder, or s3://bucket/prefix (endpoint and keys from "
            "AWS_*). Default: CUTROOM_STORAGE, else cutroom-out.",
        ),
    ] = None,
    campaign_id: Annotated[
        str | None, typer.Option(help="Campaign folder name; default from the brief.")
    ] = None,
    verbose: Annotated[bool, typer.Option(help="Show Prefect's own logs too.")] = False,
) -> None:
    """Plan and make a whole campaign: stories, reels, manifest and report."""
    from cutroom import progress
    from cutroom.settings import settings

    parsed = _brief(brief, campaign_id)
    location = _location(out or settings().out)
    board = StoryBoard()
    stop = progress.listen(board)
    try:
        with _prefect(location, verbose), Live(board, console=console, refresh_per_second=4, transient=True):
            from flows.campaign import campaign

            manifest: Manifest = asyncio.run(campaign(parsed, location))
    finally:
        stop()
    _summarise(manifest, location)
    if manifest.status is CampaignStatus.failed:
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
        status = {"complete": "[green]complete[/]", "over_budget": "[yellow]over budget[/]"}.get(
            result.status.value, "[red]failed[/]"
        )
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


@app.command()
@friendly
def plan(
    brief: Annotated[Path, typer.Argument(help="The campaign brief (YAML or JSON).")],
    campaign_id: Annotated[
        str | None, typer.Option(help="Campaign folder name; default from the brief.")
    ] = None,
) -> None:
    """Show the plan and its cost estimate; nothing is generated."""
    from providers import registry
    from providers.base import Capability
    from tasks.plan import estimate_plan

    parsed = _brief(brief, campaign_id)
    lineup = registry.lineup(parsed.providers)
    the_plan = registry.provider(Capability.planner, lineup.planner.name).plan(parsed)
    estimates = estimate_plan(the_plan, parsed, lineup)
    table = Table(title=f"{parsed.campaign}: {len(the_plan.stories)} stories")
    for column in ("story", "type", "channel", "shots", "seconds", "headline", "estimate"):
        table.add_column(column)
    for story in the_plan.stories:
        table.add_row(
            story.id, story.type.value, story.channel.value, str(len(story.shots)), f"{story.duration_s:g}",
            story.copy_.headline, f"${estimates[story.id]:.2f}",
        )  # fmt: skip
    console.print(table)
    total = sum(estimates.values())
    verdict = "within" if total <= parsed.budget_usd else "[red]over[/]"
    console.print(f"Estimate ${total:.2f} at most, {verdict} the ${parsed.budget_usd:.2f} budget.")
    picks = ", ".join(
        f"{cap} → {getattr(lineup, cap).name}" for cap in ("planner", "image", "video", "speech", "judge")
    )
    console.print(f"Providers: {picks}")
    for note in lineup.notes:
        console.print(f"  [dim]{note}[/]")


@app.command()
@friendly
def providers() -> None:
    """Which provider can do what here, and what the others need."""
    from providers.registry import CATALOGUE

    table = Table(title="Providers")
    for column in ("capability", "provider", "ready", "what it is"):
        table.add_column(column)
    for entry in CATALOGUE:
        missing = entry.missing()
        table.add_row(
            entry.capability.value,
            entry.name,
            "[green]yes[/]" if not missing else f"[yellow]{missing}[/]",
            entry.summary,
        )
    console.print(table)


@app.command()
@friendly
def generate(
    kind: Annotated[AssetKind, typer.Argument(help="What to make.")],
    prompt: Annotated[str, typer.Option(help="What it should show (or, for speech, the words to say).")],
    provider: Annotated[str, typer.Option(help="Provider name; see `cutroom providers`.")] = "local",
    model: Annotated[
        str | None, typer.Option(help="The provider's model, e.g. ray-flash-2 or gen4.5.")
    ] = None,
    aspect: Annotated[Aspect, typer.Option(help="Frame shape.")] = Aspect.landscape,
    duration: Annotated[float, typer.Option(min=1, max=30, help="Clip length in seconds.")] = 5.0,
    camera: Annotated[CameraMotion, typer.Option(help="Camera motion for a clip.")] = CameraMotion.push_in,
    image: Annotated[
        str | None,
        typer.Option(help="Start a clip from: a file, an http(s) URL, or provider:job_id to extend."),
    ] = None,
    end_image: Annotated[
        str | None, typer.Option(help="End a clip on: a file, URL, or provider:job_id to lead into.")
    ] = None,
    loop: Annotated[bool, typer.Option(help="A clip whose end flows back into its start.")] = False,
    operation: Annotated[
        Operation | None, typer.Option(help="Work on --source instead of making anew.")
    ] = None,
    source: Annotated[
        str | None, typer.Option(help="What --operation works on: provider:job_id, URL or file.")
    ] = None,
    strength: Annotated[
        str | None,
        typer.Option(
            help="How far --operation modify moves from the source: a Luma video mode (adhere_1 … "
            "flex_1 … reimagine_3) or a Luma image weight from 0 to 1."
        ),
    ] = None,
    resolution: Annotated[
        str | None,
        typer.Option(
            help="Output size by the model's own name: Luma 540p|720p|1080p|4k, Runway upscale 720p|1k|2k|4k."
        ),
    ] = None,
    fps: Annotated[
        int | None,
        typer.Option(
            min=1, help="Frame rate of a new clip, or the target of --operation enhance_frame_rate."
        ),
    ] = None,
    reference: Annotated[
        list[str] | None,
        typer.Option(help="An image for a new image to draw on: file, URL or provider:job_id (repeatable)."),
    ] = None,
    style_ref: Annotated[
        list[str] | None, typer.Option(help="An image whose style a new image follows (repeatable).")
    ] = None,
    character_ref: Annotated[
        list[str] | None,
        typer.Option(help="An image of the character a new image shows, one identity (repeatable)."),
    ] = None,
    voice: Annotated[str | None, typer.Option(help="Voice for speech, e.g. en-us, en-gb.")] = None,
    headline: Annotated[str, typer.Option(help="Text typeset on an image or revealed in a clip.")] = "",
    out: Annotated[Path, typer.Option(help="File or folder to write the asset to.")] = Path("."),
    verbose: Annotated[bool, typer.Option(help="Show Prefect's own logs too.")] = False,
) -> None:
    """Make one image, clip or voice-over."""
    from providers.base import Capability, ProviderError
    from providers.registry import known

    if provider not in known(Capability(kind.value)):
        raise UserError(
            f"'{provider}' cannot make {kind.value}; known: {', '.join(known(Capability(kind.value)))}",
            "run `cutroom providers` to see what each provider does",
        )
    if not prompt.strip():
        raise UserError("--prompt is empty", "say what the asset should show or say")
    from providers.registry import model_for

    try:
        model_for(Capability(kind.value), provider, model)
    except ProviderError as exc:
        raise UserError(exc.detail, "run `cutroom providers` to see each provider") from None
    references = {"--reference": reference, "--style-ref": style_ref, "--character-ref": character_ref}
    given = [(flag, value) for flag, values in references.items() for value in values or ()]
    for flag, value in (("--image", image), ("--end-image", end_image), ("--source", source), *given):
        if value is not None and not _reachable(value):
            raise UserError(
                f"{flag} {value} does not exist", "give a file path, an http(s) URL or provider:job_id"
            )
    if given and (kind is not AssetKind.image or operation is not None):
        what = f"--operation {operation.value}" if operation else f"`generate {kind.value}`"
        raise UserError(
            f"{given[0][0]} guides a new image; it does not go with {what}",
            "use --reference, --style-ref and --character-ref with `cutroom generate image`",
        )
    if (operation is None) != (source is None):
        raise UserError(
            "--operation and --source go together", "e.g. --operation upscale --source luma:JOB_ID"
        )
    work = _writable(Path(os.environ.get("CUTROOM_OUT", "cutroom-out")))
    with _prefect(str(work), verbose):
        from flows.generate import generate_one

        asset = asyncio.run(
            generate_one(
                kind, prompt, provider=provider, model=model, aspect=aspect, duration_s=duration,
                camera_motion=camera, image=image, end_image=end_image, loop=loop, operation=operation,
                source=source, strength=strength, resolution=resolution, fps=fps, references=reference,
                style_references=style_ref, character_references=character_ref, voice=voice,
                headline=headline, out=str(work),
            )
        )  # fmt: skip
    from cutroom.storage import path_of

    source = path_of(asset.uri)
    target = (
        out / f"{kind.value}-{asset.sha256[:12]}{source.suffix}" if out.is_dir() or not out.suffix else out
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    size = f"{asset.width}x{asset.height} " if asset.width else ""
    length = f"{asset.duration_s:.1f} s " if asset.duration_s else ""
    job = f", job {asset.provider}:{asset.job_id}" if asset.job_id else ""
    console.print(
        f"{kind.value}: {target} ({size}{length}{asset.provider}/{asset.model}{job})", highlight=False
    )


@app.command()
@friendly
def simulate(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Loopback port to listen on.")] = 8765,
    latency_scale: Annotated[
        float, typer.Option(min=0, help="Multiplies every vendor job's running time.")
    ] = 1.0,
    fault_rate: Annotated[
        float, typer.Option(min=0, max=1, help="Chance a request or job gets a fault.")
    ] = 0.0,
    faults: Annotated[
        str,
        typer.Option(help="Comma list: 429,5xx,timeout,reset,malformed,failed,throttled,moderation,expired."),
    ] = "",
) -> None:
    """Run the loopback vendor simulator; point CUTROOM_SIMULATOR_URL at it to use every vendor adapter offline."""
    from simulator.app import serve
    from simulator.core import Fault, SimConfig

    names = [f.strip() for f in faults.split(",") if f.strip()]
    unknown = [n for n in names if n not in {f.value for f in Fault}]
    if unknown:
        raise UserError(
            f"unknown fault {', '.join(unknown)}", f"use any of {', '.join(f.value for f in Fault)}"
        )
    config = SimConfig(latency_scale=latency_scale, fault_rate=fault_rate, faults=[Fault(n) for n in names])
    console.print(f"Simulating Luma and Runway on http://127.0.0.1:{port} — in another shell:")
    console.print(f"  export CUTROOM_SIMULATOR_URL=http://127.0.0.1:{port}")
    console.print("Change settings at runtime with POST /_sim/config; see requests at GET /_sim/requests.")
    serve(port=port, config=config)


def _reachable(value: str) -> bool:
    """A URL or provider:job_id is taken on trust (the provider says if it is wrong); a path must exist."""
    from providers.registry import is_job

    return value.startswith(("http://", "https://")) or is_job(value) or Path(value).is_file()


def main() -> None:
    sys.exit(app())
