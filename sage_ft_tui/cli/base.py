"""The Typer app object and what every command family shares: headless mode, output, errors."""

from __future__ import annotations

import os

import typer
from typer.core import TyperOption

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


def headless(flag: bool = False) -> bool:
    return flag or _State.no_tui or os.environ.get("SAGE_FT_NO_TUI") == "1"


def out(msg: str = "") -> None:
    typer.echo(msg)


def fail(e: SageError, code: int = 2) -> None:
    typer.echo(e.oneline(), err=True)
    raise typer.Exit(code)


def open_tui(**kw) -> None:
    from sage_ft_tui.tui.app import run_app

    run_app(**kw)
