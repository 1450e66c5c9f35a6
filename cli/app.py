"""The Typer app: every command, in the order `cutroom --help` lists them.

Each command module imports only what its options need; the heavy work (Prefect, flows, providers) is imported
inside the command, so `cutroom --help` and a mistyped option answer at once.
"""

from __future__ import annotations

import typer

from cli import generate, longform, models, params, plan, providers, review, run, script, server, simulate

app = typer.Typer(
    name="cutroom",
    help="Turn a marketing brief into finished, scored campaign media.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for command in (
    run.run,
    review.review,
    plan.plan,
    params.params,
    providers.providers,
    models.models,
    generate.generate,
    script.script,
    longform.longform,
    simulate.simulate,
    server.server,
):
    app.command()(command)
