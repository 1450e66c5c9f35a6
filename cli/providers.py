"""`cutroom providers`: per capability, every vendor (built-in or plugin), ready here or what it needs."""

from __future__ import annotations

from rich.table import Table

from cli.errors import friendly
from cli.terminal import console


@friendly
def providers() -> None:
    """Which provider can do what here, and what the others need."""
    from cutroom.capabilities import Capability
    from providers import registry

    table = Table(title="Providers")
    for column in ("capability", "provider", "ready", "default model", "what it is"):
        table.add_column(column)
    for capability in Capability:
        for vendor in registry.offering(capability):
            missing = vendor.missing()
            table.add_row(
                capability.value,
                vendor.name,
                "[green]yes[/]" if not missing else f"[yellow]{missing}[/]",
                vendor.default_model(capability),
                vendor.summary or vendor.title,
            )
        table.add_section()
    console.print(table)
    console.print("[dim]Every model, its price and options: `cutroom models`.[/]")
