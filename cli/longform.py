"""`cutroom longform`: a narration script to one master track with measured pauses."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from cli import inputs, stopping
from cli.errors import UserError, friendly
from cli.prefect_setup import configured_prefect
from cli.terminal import console

if TYPE_CHECKING:
    from cutroom.longform import LongformAudio


@friendly
def longform(
    script: Annotated[Path, typer.Argument(help="The narration script: UTF-8 text, scenes and pause marks.")],
    voice: Annotated[
        str | None, typer.Option(help="The speech provider's voice, e.g. en-gb or hi for espeak-ng.")
    ] = None,
    provider: Annotated[str, typer.Option(help="Speech provider; see `cutroom providers`.")] = "local",
    out: Annotated[
        str | None,
        typer.Option(
            help="Where the work is written: a folder or s3://bucket/prefix. Default: CUTROOM_STORAGE."
        ),
    ] = None,
    campaign_id: Annotated[
        str | None, typer.Option("--id", help="Folder name under campaigns/; default from the script's name.")
    ] = None,
    verbose: Annotated[bool, typer.Option(help="Show Prefect's own logs too.")] = False,
) -> None:
    """Narrate a long-form script (guided meditation, wellness audio) into one master with exact pauses."""
    from cutroom.capabilities import Capability
    from cutroom.longform import parse_script
    from cutroom.settings import settings
    from providers.registry import known

    # Everything checkable is checked before Prefect starts: a bad script costs nothing.
    fix = "fix the script and run again; nothing was spoken"
    text = inputs.script(script, parse_script, fix)
    if provider not in known(Capability.speech):
        raise UserError(
            f"'{provider}' cannot speak; known: {', '.join(known(Capability.speech))}",
            "run `cutroom providers` to see what each provider does",
        )
    campaign_id = inputs.folder_id(campaign_id, script, "longform")
    location = inputs.location(out or settings().out)
    with configured_prefect(location, verbose):
        from flows.longform import longform_audio

        made = stopping.run_flow(
            lambda: longform_audio(text, voice, provider, out=location, campaign_id=campaign_id)
        )
    _summarise(made, location, campaign_id)
    if not made.report.ok:
        raise typer.Exit(1)


def _summarise(made: LongformAudio, location: str, campaign_id: str) -> None:
    from cutroom.storage import open_storage
    from tasks.longform import longform_key

    master = made.master
    console.print(
        f"master: {_where(master.uri)} ({master.sheet.duration_s:.1f} s, {len(master.sheet.segments)} clauses, "
        f"{len(master.scenes)} scenes, gain {master.gain_db:+.1f} dB)",
        highlight=False,
    )
    table = Table(title="pauses, measured in the master")
    for column in ("scene", "after", "target", "measured", "Δ ms", ""):
        table.add_column(column)
    for pause in made.report.pauses:
        measured = "missing" if pause.measured_s is None else f"{pause.measured_s:.3f}"
        delta = "–" if pause.delta_s is None else f"{pause.delta_s * 1000:+.0f}"
        words = pause.after if len(pause.after) <= 40 else pause.after[:39] + "…"
        table.add_row(
            pause.scene,
            words,
            f"{pause.target_s:g}",
            measured,
            delta,
            "[green]ok[/]" if pause.ok else "[red]off[/]",
        )
    console.print(table)
    tolerance = made.report.tolerance_s * 1000
    worst = made.report.worst_s
    worst_text = "–" if worst is None else f"{worst * 1000:.0f} ms"
    verdict = "[green]all within[/]" if made.report.ok else "[red]some outside[/]"
    console.print(
        f"validation: {len(made.report.pauses)} pauses, {verdict} ±{tolerance:.0f} ms (worst {worst_text}); "
        f"manifest {_where(made.manifest)}",
        highlight=False,
    )
    for start, end in made.report.unexpected:
        console.print(
            f"  note: a silence the script did not ask for at {start:.2f}-{end:.2f} s", highlight=False
        )
    report = open_storage(location).uri(longform_key(campaign_id, "index.html"))
    console.print(f"report: {_where(report)}", highlight=False)


def _where(uri: str) -> str:
    """A file as a user opens it: a local path, or the object's s3:// URI."""
    from cutroom.storage import path_of

    return str(path_of(uri)) if uri.startswith("file:") else uri
