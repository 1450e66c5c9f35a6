"""`cutroom script`: a scene script to a narrated video per scene and one stitched cut."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from cli import inputs, stopping
from cli.errors import UserError, friendly
from cli.prefect_setup import configured_prefect
from cli.terminal import console

if TYPE_CHECKING:
    from cutroom.script import ScriptManifest

#: SPEAKER=VOICE, as --voice takes it.
_VOICE = re.compile(r"\s*([^=]{1,40}?)\s*=\s*(\S{1,80})\s*")


@friendly
def script(
    script: Annotated[
        Path,
        typer.Argument(help="The scene script: UTF-8 text of [Scene N – Title] blocks.", show_default=False),
    ],
    out: Annotated[
        str | None,
        typer.Option(
            help="Where the work is written: a folder or s3://bucket/prefix. Default: CUTROOM_STORAGE."
        ),
    ] = None,
    campaign_id: Annotated[
        str | None, typer.Option("--id", help="Folder name under campaigns/; default from the script's name.")
    ] = None,
    force_upload: Annotated[
        bool, typer.Option(help="Send media to the avatar vendor again instead of reusing what it holds.")
    ] = False,
    voice: Annotated[
        list[str] | None,
        typer.Option(
            help="A speaker's voice, SPEAKER=VOICE (VO=en-gb, Maya=en-us+f3); repeat for each speaker."
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option(help="Show Prefect's own logs too.")] = False,
) -> None:
    """Voice every scene of a script, put its presenter or B-roll on screen, and stitch the scenes, captioned."""
    from cutroom.boundary import BoundaryError, quote
    from cutroom.script import parse_scene_script
    from cutroom.settings import settings

    # Everything checkable is checked before Prefect starts: a bad script costs nothing.
    fix = "fix the script and run again; nothing was made"
    text = inputs.script(script, parse_scene_script, fix)
    voices = {}
    for given in voice or []:
        found = _VOICE.fullmatch(given)
        if found is None:
            raise UserError(f"--voice {quote(given, 60)} is not SPEAKER=VOICE", "e.g. --voice Maya=en-us")
        voices[found[1]] = found[2]
    campaign_id = inputs.folder_id(campaign_id, script, "script")
    location = inputs.location(out or settings().out)
    with configured_prefect(location, verbose):
        from flows.script_video import script_video

        try:
            made = stopping.run_flow(
                lambda: script_video(
                    text,
                    out=location,
                    campaign_id=campaign_id,
                    voices=voices,
                    force_upload=force_upload,
                    folder=str(script.resolve().parent),  # a Portrait: is found beside the script
                )
            )
        except BoundaryError as exc:  # a talking photo or portrait refused before anything is paid for
            raise UserError(f"{script.name}: {exc}", fix) from None
    _summarise(made, location)
    if made.status != "complete":
        raise typer.Exit(1)


def _summarise(made: ScriptManifest, location: str) -> None:
    from cutroom.storage import open_storage
    from tasks.script import script_key

    table = Table(title=f"scenes of {made.campaign_id}")
    for column in ("scene", "status", "video", "why not"):
        table.add_column(column)
    for scene in made.scenes:
        status = "[green]complete[/]" if scene.status == "complete" else f"[red]failed at {scene.step}[/]"
        table.add_row(scene.id, status, _where(scene.video) if scene.video else "–", scene.error or "")
    console.print(table)
    stitched = _where(made.video) if made.video else f"[red]not made[/] {made.video_error or ''}"
    console.print(f"stitched: {stitched}", highlight=False)
    storage = open_storage(location)
    manifest, report = (
        storage.uri(script_key(made.campaign_id, name)) for name in ("manifest.json", "index.html")
    )
    console.print(f"manifest: {_where(manifest)}", highlight=False)
    console.print(f"report: {_where(report)}", highlight=False)


def _where(uri: str) -> str:
    """A file as a user opens it: a local path, or the object's s3:// URI."""
    from cutroom.storage import path_of

    return str(path_of(uri)) if uri.startswith("file:") else uri
