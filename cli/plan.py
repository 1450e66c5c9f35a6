"""`cutroom plan`: the plan and its cost estimate, with nothing generated."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli import inputs
from cli.errors import friendly
from cli.terminal import console


@friendly
def plan(
    brief: Annotated[Path, typer.Argument(help="The campaign brief (YAML or JSON).")],
    campaign_id: Annotated[
        str | None, typer.Option(help="Campaign folder name; default from the brief.")
    ] = None,
) -> None:
    """Show the plan and its cost estimate; nothing is generated."""
    from cutroom.capabilities import Capability
    from providers import registry
    from tasks.plan import estimate_plan, lineup_for

    parsed = inputs.brief(brief, campaign_id)
    lineup = lineup_for(parsed)
    the_plan = registry.provider(Capability.planner, lineup[Capability.planner].name).plan(parsed)
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
    picks = ", ".join(f"{capability.value} → {pick.name}" for capability, pick in lineup.picks.items())
    console.print(f"Providers: {picks}")
    for note in lineup.notes:
        console.print(f"  [dim]{note}[/]")
