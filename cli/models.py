"""`cutroom models`: every model card — what it makes, how long, which shapes, what it costs, how long it takes
— read from the vendors' declarations (and a CUTROOM_CARDS file of the user's own prices)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cli.errors import UserError, friendly
from cli.terminal import console


@friendly
def models(
    provider: Annotated[str | None, typer.Option(help="Only this provider's models.")] = None,
    capability: Annotated[
        str | None, typer.Option(help="Only models of this capability (image, video …).")
    ] = None,
    options: Annotated[
        bool, typer.Option(help="Also list each model's own settings (for --option).")
    ] = False,
) -> None:
    """Every model card: durations, aspects, price, expected latency; (u) marks figures not confirmed."""
    from cutroom.capabilities import Capability
    from providers import declarations

    vendors = declarations.vendors()
    if provider is not None and provider not in vendors:
        raise UserError(f"no provider {provider!r}", f"known: {', '.join(vendors)}")
    if capability is not None and capability not in {c.value for c in Capability}:
        raise UserError(
            f"no capability {capability!r}", f"use one of {', '.join(c.value for c in Capability)}"
        )
    table = Table(title="Models")
    for column in ("provider", "model", "makes", "seconds", "aspects", "price", "latency", "notes"):
        table.add_column(column, overflow="fold")
    for vendor in vendors.values():
        if provider not in (None, vendor.name):
            continue
        for card in vendor.models:
            if capability not in (None, card.capability.value):
                continue
            notes = [] if not card.retired else [f"[red]retired[/]: {card.retired}"]
            notes += ["default"] if card.default and not card.retired else []
            notes += [f"edits: {', '.join(card.operations)}"] if card.operations else []
            notes += ["extends its own clips"] if card.chains else []
            notes += ["end frame"] if "last_frame" in card.inputs else []
            if options and card.options:
                notes += [f"--option {name}=<{o.describe()}>" for name, o in card.options.items()]
            table.add_row(
                vendor.name,
                card.model,
                card.capability.value,
                ", ".join(f"{d:g}" for d in card.durations_s)
                or ("any" if card.capability is Capability.video else ""),
                ", ".join(card.aspects) or "any",
                card.tokens.describe() if card.tokens else card.price.describe(),
                f"~{card.expected_latency_s:g} s" + (" (u)" if card.latency_unverified else ""),
                "; ".join(notes),
            )
    console.print(table)
