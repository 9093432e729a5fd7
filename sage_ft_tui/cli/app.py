"""The `sage-ft-tui` command line (Typer): the root callback and `main`.

No sub-command opens the wizard; `--no-tui` (before or after a sub-command) keeps
everything headless. Imports here stay light so `--help` is fast: the engine's heavy
parts are imported inside the commands that need them. Each command family lives in its
own module with a `register(app)`; the order below is the order of `--help`.
"""

from __future__ import annotations

import sys

import typer

from sage_ft_tui.cli import deploy, evaluate, export, hardware, info, queue, recipes, runs, sweep
from sage_ft_tui.cli.base import app, headless, open_tui, out, set_no_tui
from sage_ft_tui.engine.errors import SageError


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    no_tui: bool = typer.Option(False, "--no-tui", help="Headless: no full-screen app; print and exit."),
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
):
    """With no command, open the wizard."""
    set_no_tui(no_tui)
    if version:
        from sage_ft_tui import __version__

        out(__version__)
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        if headless():
            out(ctx.get_help())
            out("")
            runs.print_runs()
            raise typer.Exit()
        open_tui()


for _family in (runs, queue, sweep, info, recipes, hardware, deploy, evaluate, export):
    _family.register(app)


def main() -> None:
    try:
        app()
    except SageError as e:  # anything that escaped a command
        typer.echo(e.oneline(), err=True)
        sys.exit(2)
    except PermissionError as e:  # a path we may not read or write: one line naming it, never a traceback
        from sage_ft_tui.engine.paths import permission_error

        typer.echo(permission_error(e.filename or "(unknown path)", "the path").oneline(), err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
