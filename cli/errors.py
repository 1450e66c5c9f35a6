"""Mistakes a user can make, and how every command answers them: one clear line and a hint, never a traceback."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from cli import stopping
from cli.terminal import err
from cutroom.brief import BriefError
from cutroom.media import MediaError
from cutroom.storage import StorageUnavailable

F = TypeVar("F", bound=Callable[..., Any])


class UserError(Exception):
    """A mistake the user can fix: one line of what is wrong, one of what to do."""

    def __init__(self, message: str, hint: str = "", code: int = 2):
        self.hint, self.code = hint, code
        super().__init__(message)


def friendly(command: F) -> F:
    """Every mistake a user can make ends in one clear line and a hint, never a traceback."""
    from providers.errors import ErrorKind, ProviderError

    hints = {
        ErrorKind.auth: "check the provider's API key",
        ErrorKind.not_configured: "run `cutroom providers` to see what is set up",
        ErrorKind.invalid_input: "check the options against `cutroom generate --help` and `cutroom models`",
        ErrorKind.insufficient_credits: "top up the provider account or pick another provider",
    }

    @functools.wraps(command)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except BriefError as exc:
            err.print(f"[red]error:[/] {exc.source} is not a usable brief:", highlight=False)
            for problem in exc.problems:
                err.print(f"  • {problem}", highlight=False)
            err.print("[dim]hint: fix the fields above and run again; nothing was generated.[/]")
            raise typer.Exit(2) from None
        except UserError as exc:
            err.print(f"[red]error:[/] {exc}", highlight=False)
            if exc.hint:
                err.print(f"[dim]hint: {exc.hint}[/]", highlight=False)
            raise typer.Exit(exc.code) from None
        except ProviderError as exc:
            err.print(f"[red]error:[/] {exc}", highlight=False)
            err.print(f"[dim]hint: {hints.get(exc.kind, 'try again later')}[/]")
            raise typer.Exit(1) from None
        except (MediaError, OSError, StorageUnavailable) as exc:
            err.print(f"[red]error:[/] {exc}", highlight=False)
            err.print("[dim]hint: check the paths and free disk space; finished work is kept.[/]")
            raise typer.Exit(1) from None
        except stopping.Interrupted as exc:
            err.print(stopping.message(exc.signum), highlight=False)
            stopping.exit_now(exc.code)
        except KeyboardInterrupt:  # before or after the run, where stopping.run_flow does not listen
            err.print("[yellow]stopped.[/] Finished work is kept; run the same command again to resume.")
            raise typer.Exit(130) from None

    return guarded  # type: ignore[return-value]
