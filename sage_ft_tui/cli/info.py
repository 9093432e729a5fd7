"""`examples` and `doctor`: what the tool expects and what this machine has."""

from __future__ import annotations

import json
from typing import Optional

import typer

from sage_ft_tui.cli.base import out
from sage_ft_tui.cli.options import NoTui


def examples(no_tui: bool = NoTui):
    """Example data for each task and a full config.yaml with every key."""
    from sage_ft_tui.cli.output import print_examples

    print_examples()


def doctor(
    json_out: bool = typer.Option(False, "--json", help="JSON output."),
    model: Optional[str] = typer.Option(
        None, "--model", "-m", help="Also describe this model: family, end of turn, system prompt, attention."
    ),
    no_tui: bool = NoTui,
):
    """Versions, CUDA, GPUs, disk, and what is missing (--model: what a model's family and template do)."""
    from sage_ft_tui.engine.hardware.doctor import run_doctor

    report = run_doctor(model)
    if json_out:
        out(json.dumps(report, indent=2, default=str))
    else:
        from sage_ft_tui.cli.output import print_doctor

        print_doctor(report)


def register(app: typer.Typer) -> None:
    app.command("examples")(examples)
    app.command("doctor")(doctor)
