"""What a campaign checks before anything is paid for, however its brief arrived (a file through the CLI, or a
deployment's parameter filled in the Prefect UI)."""

from __future__ import annotations

from pathlib import Path

from prefect.context import FlowRunContext

from cutroom.brief import Brief, BriefError, allowed_roots, check_files
from cutroom.claims import claim
from cutroom.storage import open_storage


def check_before_paying(brief: Brief, out: str, resume: bool) -> None:
    """The brief's files are images from where a brief may name them, and the campaign's folder is writable and
    this campaign's (or resumed): every problem found here costs nothing.

    A brief from the CLI was read beside its own folder (cutroom.brief.load_brief), which is where its files
    were found. One that arrives as a deployment parameter has no folder: its files may come only from the
    worker's working folder or CUTROOM_ALLOWED_ROOTS, so a form in the UI cannot make a worker read elsewhere."""
    context = FlowRunContext.get()
    from_a_form = bool(context and context.flow_run and context.flow_run.deployment_id)
    roots = allowed_roots(Path.cwd()) if from_a_form else [Path("/")]
    problems = check_files(brief, Path.cwd(), roots)
    if problems:
        raise BriefError("the brief", problems)
    claim(open_storage(out), brief, resume)
