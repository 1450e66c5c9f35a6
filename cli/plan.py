"""`cutroom plan`: the plan and its cost estimate, with nothing generated."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.markdown import Markdown
from rich.table import Table

from cli import inputs
from cli.errors import friendly
from cli.terminal import console

if TYPE_CHECKING:
    from cutroom.brief import Brief
    from cutroom.lineup import Lineup
    from cutroom.plan import Plan


@friendly
def plan(
    brief: inputs.BriefFile,
    campaign_id: inputs.CampaignIdOption = None,
) -> None:
    """Show the plan and its cost estimate; nothing is generated."""
    from cutroom.capabilities import Capability
    from providers import registry
    from tasks.plan import estimate_plan, lineup_for

    parsed = inputs.brief(brief, campaign_id)
    lineup = lineup_for(parsed)
    planner = lineup[Capability.planner]
    the_plan = registry.provider(Capability.planner, planner.name).plan(parsed, planner.model)
    if the_plan.prd is not None:
        console.print(Markdown(the_plan.prd.markdown(parsed.campaign)))
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
    console.print(_shots(the_plan, parsed, lineup))
    total = sum(estimates.values())
    verdict = "within" if total <= parsed.budget_usd else "[red]over[/]"
    console.print(f"Estimate ${total:.2f} at most, {verdict} the ${parsed.budget_usd:.2f} budget.")
    picks = ", ".join(f"{capability.value} → {pick.name}" for capability, pick in lineup.picks.items())
    hero = f", hero shots → {lineup.hero_video.name}" if lineup.hero_video else ""
    console.print(f"Providers: {picks}{hero}")
    for note in lineup.notes:
        console.print(f"  [dim]{note}[/]")


def _shots(the_plan: Plan, brief: Brief, lineup: Lineup) -> Table:
    """Every clip: the engine and model it will be made on, its length there, how it joins the one before, and
    what it costs."""
    from providers import registry
    from tasks.plan import shot_costs

    table = Table(title="Shots")
    for column in ("story", "shot", "engine", "seconds", "joins previous", "estimate"):
        table.add_column(column)
    for story in the_plan.stories:
        previous = None
        for n, (shot, spec, usd) in enumerate(shot_costs(story, brief, lineup), start=1):
            joins = ""
            if shot.continues_previous and previous is not None:
                chains = registry.card_of(spec).extends(registry.card_of(previous))
                joins = "chained" if chains else "last frame"
            table.add_row(
                story.id, f"{n}{' hero' if shot.hero else ''}", f"{spec.provider}/{spec.model}",
                f"{spec.duration_s:g}", joins, f"${usd:.2f}",
            )  # fmt: skip
            previous = spec
    return table
