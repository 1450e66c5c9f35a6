"""`cutroom simulate`: the vendors' wire contracts on loopback, for running every adapter offline."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.errors import UserError, friendly
from cli.terminal import console


@friendly
def simulate(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Loopback port to listen on.")] = 8765,
    latency_scale: Annotated[
        float, typer.Option(min=0, help="Multiplies every vendor job's running time.")
    ] = 1.0,
    fault_rate: Annotated[
        float, typer.Option(min=0, max=1, help="Chance a request or job gets a fault.")
    ] = 0.0,
    faults: Annotated[
        str,
        typer.Option(
            help="Comma list: 429,5xx,timeout,reset,malformed,failed,throttled,moderation,moderation_output,expired."
        ),
    ] = "",
) -> None:
    """Run the loopback vendor simulator; point CUTROOM_SIMULATOR_URL at it to use every vendor adapter offline."""
    from simulator.app import serve, vendors
    from simulator.core import Fault, SimConfig

    names = [f.strip() for f in faults.split(",") if f.strip()]
    unknown = [n for n in names if n not in {f.value for f in Fault}]
    if unknown:
        raise UserError(
            f"unknown fault {', '.join(unknown)}", f"use any of {', '.join(f.value for f in Fault)}"
        )
    config = SimConfig(latency_scale=latency_scale, fault_rate=fault_rate, faults=[Fault(n) for n in names])
    names = ", ".join(v.VENDOR for v in vendors())
    console.print(f"Simulating {names} on http://127.0.0.1:{port} — in another shell:", highlight=False)
    console.print(f"  export CUTROOM_SIMULATOR_URL=http://127.0.0.1:{port}")
    console.print("Change settings at runtime with POST /_sim/config; see requests at GET /_sim/requests.")
    serve(port=port, config=config)
