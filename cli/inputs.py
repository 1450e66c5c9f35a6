"""What commands make of what a user typed: a brief to work from, and a place to write to."""

from __future__ import annotations

import os
from pathlib import Path

from cli.errors import UserError
from cutroom.brief import Brief, BriefError, load_brief


def brief(path: Path, campaign_id: str | None) -> Brief:
    """The brief at `path`, under another campaign id if one is given, its provider wishes all known."""
    parsed = load_brief(path)
    if campaign_id is not None:
        from cutroom.brief import parse_brief

        parsed = parse_brief(
            {**parsed.model_dump(mode="json", exclude_none=True), "id": campaign_id}, path.name
        )
    from providers.registry import unknown_preferences

    problems = unknown_preferences(parsed.providers)
    if problems:
        raise BriefError(path.name, problems)
    return parsed


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
