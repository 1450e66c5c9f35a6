"""What commands make of what a user typed: a brief or script to work from, and a place to write to."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from cli.errors import UserError
from cutroom.boundary import BoundaryError, quote, read_document
from cutroom.brief import CAMPAIGN_ID, Brief, BriefError, load_brief

#: The brief file and campaign id every command that reads a brief takes, spelled and explained the same way.
BriefFile = Annotated[Path, typer.Argument(help="The campaign brief (YAML or JSON).")]
CampaignIdOption = Annotated[str | None, typer.Option(help="Campaign folder name; default from the brief.")]


def brief(path: Path, campaign_id: str | None) -> Brief:
    """The brief at `path`, under another campaign id if one is given, its provider wishes all known."""
    parsed = load_brief(path)
    if campaign_id is not None:
        if not re.fullmatch(CAMPAIGN_ID, campaign_id):
            raise UserError(
                f"--campaign-id {quote(campaign_id)} is not a folder-safe id",
                "use lowercase letters, digits and dashes, starting with a letter or digit (at most 63)",
            )
        parsed = parsed.model_copy(update={"id": campaign_id})
    from providers.registry import unknown_preferences

    problems = unknown_preferences(parsed)
    if problems:
        raise BriefError(path.name, problems)
    return parsed


def script(path: Path, parse: Callable[[str], object], fix: str) -> str:
    """A script file's text, read (bounded, strict UTF-8) and parsed before anything starts; refused naming the
    line to fix."""
    try:
        text = read_document(path, "script")  # its refusals name the file
    except BoundaryError as exc:
        raise UserError(str(exc), fix) from None
    try:
        parse(text)
    except BoundaryError as exc:
        raise UserError(f"{path.name}: {exc}", fix) from None
    return text


def folder_id(given: str | None, path: Path, default: str) -> str:
    """The campaign folder of a script's work: --id, else one made from the script's file name."""
    chosen = given or re.sub(r"[^a-z0-9]+", "-", path.stem.lower()).strip("-")[:63] or default
    if not re.fullmatch(CAMPAIGN_ID, chosen):
        raise UserError(
            f"--id {quote(chosen)} is not a folder-safe id",
            "use lowercase letters, digits and dashes, starting with a letter or digit (at most 63)",
        )
    return chosen


def writable(out: Path) -> Path:
    """A folder we can write to, made if missing."""
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


def location(text: str) -> str:
    """Where a campaign goes: a local folder (made if missing) or an S3 bucket we can reach."""
    if not text.startswith("s3:"):
        return str(writable(Path(text)))
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


def claimed(location: str, parsed: Brief, resume: bool) -> None:
    """The campaign's folder made this brief's, or a clean refusal when it holds another campaign."""
    from cutroom.claims import FolderTaken, claim
    from cutroom.storage import open_storage

    try:
        claim(open_storage(location), parsed, resume)
    except FolderTaken as exc:
        raise UserError(str(exc), "nothing was made or overwritten") from None
