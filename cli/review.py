"""`cutroom review`: a campaign waiting for review, answered from a terminal with the same form the UI shows."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from cli.errors import UserError, friendly
from cli.terminal import console
from cutroom.boundary import quote


@friendly
def review(
    campaign_id: Annotated[str, typer.Argument(help="The campaign id (its folder name) waiting for review.")],
    approve: Annotated[list[str] | None, typer.Option(help="A story id that goes on (repeatable).")] = None,
    reject: Annotated[
        list[str] | None, typer.Option(help="A story id made again with --note as direction (repeatable).")
    ] = None,
    note: Annotated[
        list[str] | None,
        typer.Option(help="The direction for each --reject, in the same order; then each --drop's reason."),
    ] = None,
    drop: Annotated[list[str] | None, typer.Option(help="A story id left out (repeatable).")] = None,
    approve_all: Annotated[bool, typer.Option(help="Approve every story not named otherwise.")] = False,
) -> None:
    """List the stories a campaign waits on (link and score), or send decisions; stories left out of the
    decisions are asked about again."""
    import asyncio

    asyncio.run(_review(campaign_id, approve or [], reject or [], note or [], drop or [], approve_all))


async def _review(
    campaign_id: str,
    approve: list[str],
    reject: list[str],
    note: list[str],
    drop: list[str],
    approve_all: bool,
) -> None:
    from cutroom.prefect_server import shared_server

    if not shared_server():
        raise UserError("no Prefect server is set", "set PREFECT_API_URL to the server the campaign runs on")
    run, form = await _waiting(campaign_id)
    asked: dict[str, str] = {i: p.get("description", "") for i, p in form["properties"].items()}
    if not (approve or reject or drop or approve_all):
        _show(campaign_id, asked)
        return
    answers = decisions(asked, approve, reject, note, drop, approve_all)
    from prefect.flow_runs import aresume_flow_run

    await aresume_flow_run(run.id, run_input=answers)
    for story_id, said in answers.items():
        console.print(f"{story_id}: {said['decision']}" + (f" ({said['note']})" if said["note"] else ""))
    left = sorted(set(asked) - set(answers))
    if left:
        console.print(f"Asked again next round: {', '.join(left)}", highlight=False)


def decisions(
    asked: dict[str, str],
    approve: list[str],
    reject: list[str],
    notes: list[str],
    drop: list[str],
    approve_all: bool = False,
) -> dict[str, dict[str, Any]]:
    """The form's answers, as the UI sends them; every story named must be one the round asks about."""
    unknown = [i for i in (*approve, *reject, *drop) if i not in asked]
    if unknown:
        raise UserError(
            f"not asked about in this round: {', '.join(unknown)}", f"the stories asked: {', '.join(asked)}"
        )
    if len(notes) < len(reject):
        raise UserError("each --reject needs a --note", "the note is the direction its new keyframe takes")
    answers = {i: {"decision": "reject", "note": n} for i, n in zip(reject, notes, strict=False)}
    spare = iter(notes[len(reject) :])
    answers |= {i: {"decision": "drop", "note": next(spare, "")} for i in drop}
    rest = [i for i in asked if i not in answers] if approve_all else approve
    return answers | {i: {"decision": "approve", "note": ""} for i in rest}


async def _waiting(campaign_id: str) -> tuple[Any, dict[str, Any]]:
    """The campaign's run that waits for review, and its form's schema."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterName,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.input.actions import aread_flow_run_input

    async with get_client() as client:
        runs = await client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["campaign"])),
            flow_run_filter=FlowRunFilter(
                name=FlowRunFilterName(any_=[campaign_id]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])),
            ),
            sort=FlowRunSort.START_TIME_DESC,
            limit=1,
        )
    keyset = runs[0].state.state_details.run_input_keyset if runs else None
    if not keyset:
        raise UserError(
            f"no campaign {quote(campaign_id)} is waiting for review",
            "a campaign waits when its brief has `review:` and its stories are ready to look at",
        )
    return runs[0], await aread_flow_run_input(keyset["schema"], flow_run_id=runs[0].id)


def _show(campaign_id: str, asked: dict[str, str]) -> None:
    table = Table(title=f"{campaign_id}: waiting for review")
    table.add_column("story", no_wrap=True)
    table.add_column("look at")
    for story_id, look in asked.items():
        table.add_row(story_id, escape(look))
    console.print(table)
    console.print(
        "Decide with --approve ID, --reject ID --note TEXT, --drop ID or --approve-all; "
        "stories not named are asked again.",
        highlight=False,
    )
