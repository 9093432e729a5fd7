"""The Typer app object and what every command family shares: headless mode, output, errors."""

from __future__ import annotations

import os
from typing import NoReturn

import typer
from typer.core import TyperOption

from sage_ft_tui.engine import jobs
from sage_ft_tui.engine.errors import SageError

# Typer's rich help prints a type beside every option, flags too ("--no-tui <bool>"), though a
# flag takes no value and `--no-tui true` is refused. One rule for every boolean flag: it is a
# plain switch, and the help shows it as one (no type column for flags, --help included).
_display_type_rich = TyperOption.display_type_rich


def _flag_shows_no_type(self, ctx):
    return None if self.is_flag else _display_type_rich(self, ctx)


TyperOption.display_type_rich = _flag_shows_no_type  # type: ignore[method-assign]

app = typer.Typer(
    name="sage-ft-tui",
    help="Fine-tune a causal LM with LoRA/QLoRA from a terminal wizard, or headless with --no-tui.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class _State:
    no_tui = False


def set_no_tui(flag: bool) -> None:
    """The root's `--no-tui` (given before the sub-command): every command reads it through `headless`."""
    _State.no_tui = flag


def headless(flag: bool = False) -> bool:
    return flag or _State.no_tui or os.environ.get("SAGE_FT_NO_TUI") == "1"


def out(msg: str = "", err: bool = False) -> None:
    """A line for the user: on stdout, or on stderr (`err`) beside a --json job's records."""
    typer.echo(msg, err=err)


def fail(e: SageError, job: str | None = None, code: int = 2) -> NoReturn:
    """The one error exit of every command: the one-liner on stderr (with a server's last log
    lines when the error carries them); with --json (`job` given) also the job protocol's error
    record on stdout, which the TUI reads."""
    if job:
        jobs.emit_error(job, e)
    typer.echo(e.oneline(), err=True)
    tail = getattr(e, "log_tail", None) or []
    if tail:
        typer.echo("  last lines of the server log:", err=True)
        for line in tail:
            typer.echo(f"  | {line[:300]}", err=True)
    raise typer.Exit(code)


def open_tui(**kw) -> None:
    from sage_ft_tui.tui.app import run_app

    run_app(**kw)
