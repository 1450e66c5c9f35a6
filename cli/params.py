"""`cutroom params`: a brief file as the `campaign` deployment's parameters, for CI and `prefect deployment run`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from cli import inputs
from cli.errors import UserError, friendly
from cutroom.brief import Brief


@friendly
def params(
    brief: inputs.BriefFile,
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            "--storage",
            help="Where the run writes the campaign, as the worker sees it: a folder or s3://bucket/prefix. "
            "Default: the deployment's own.",
        ),
    ] = None,
    campaign_id: inputs.CampaignIdOption = None,
) -> None:
    """Print the brief as the campaign deployment's parameters (JSON), checked as `cutroom run` checks it."""
    parameters: dict[str, Any] = {"brief": portable(inputs.brief(brief, campaign_id))}
    if out is not None:
        parameters["out"] = out
    typer.echo(json.dumps(parameters, ensure_ascii=False))


def portable(brief: Brief) -> dict[str, Any]:
    """The brief as a deployment parameter, its files named relative to the working folder.

    A worker runs in its own checkout of the repository (CUTROOM_CHECKOUT), and a brief that arrives as a
    parameter may name files only under that folder: a path from this machine would mean nothing there."""
    data = brief.model_dump(mode="json", exclude_defaults=True)
    here = Path.cwd().resolve()
    brand = data["brand"]
    for field in ("logo", "style_reference"):
        value = brand.get(field)
        if value is None or value.startswith(("http://", "https://")):
            continue
        if not Path(value).is_relative_to(here):
            raise UserError(
                f"brand.{field} {value} is outside the working folder {here}",
                "run `cutroom params` from the checkout the workers run in, with the brief's files inside it",
            )
        brand[field] = str(Path(value).relative_to(here))
    return data
