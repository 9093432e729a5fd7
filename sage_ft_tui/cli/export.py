"""`export`: the run's merged model as GGUF (+ Ollama Modelfile) or an HF folder.

    sage-ft-tui export RUN [--format gguf|hf] [--quant q8_0|f16|bf16|q4_k_m|q5_k_m|q6_k] [--force]
                           [--max-shard-size 2GB] [--push-to-hub REPO] [--no-check] [--json]

With --json (or when stdout is not a terminal) it writes the job protocol's records
(engine/jobs.py), which the TUI reads.
"""

from __future__ import annotations

import sys
from typing import Optional

import typer

from sage_ft_tui.cli.base import fail
from sage_ft_tui.engine import jobs
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.export.formats import format_help, quant_help


def export_cmd(
    run: str = typer.Argument(..., help="Run name or folder."),
    fmt: str = typer.Option("gguf", "--format", help=format_help()),
    quant: str = typer.Option("q8_0", "--quant", help=quant_help()),
    force: bool = typer.Option(
        False, "--force", help="Replace an earlier export of ours (written first, then swapped)."
    ),
    max_shard_size: str = typer.Option("2GB", "--max-shard-size", help="hf: largest safetensors shard."),
    push_to_hub: Optional[str] = typer.Option(
        None, "--push-to-hub", help="hf: upload to this Hub repo (needs a token)."
    ),
    no_check: bool = typer.Option(False, "--no-check", help="gguf: skip llama.cpp's tokenization and logits check."),
    json_out: bool = typer.Option(False, "--json", help="Progress and the result as JSON lines."),
):
    """Export the merged model (merging first if needed): GGUF with tokenizer + chat template, or HF."""
    from sage_ft_tui.engine.export.report import STAGES, summary
    from sage_ft_tui.engine.export.run import export_run

    as_json = json_out or not sys.stdout.isatty()

    def progress(stage: str, info: dict) -> None:
        if as_json:
            jobs.emit_progress("export", stage, info)
        elif stage in STAGES and not info.get("merge_stage"):
            typer.echo(f"  {STAGES[stage](info)}", err=True)

    try:
        entry = export_run(
            run,
            fmt=fmt,
            quant=quant,
            force=force,
            max_shard_size=max_shard_size,
            push_to_hub=push_to_hub,
            check=not no_check,
            progress=progress,
        )
    except SageError as e:
        fail(e, "export" if as_json else None)
    if as_json:
        jobs.emit_result("export", {"export": entry})
        return
    from sage_ft_tui.engine.fsutil import fmt_bytes

    typer.echo(f"exported {entry['path']} ({fmt_bytes(entry['bytes'])})")
    for line in summary(entry):
        typer.echo(f"  {line}")
    if entry.get("pushed_to"):
        typer.echo(f"  pushed to {entry['pushed_to']}")


def register(app: typer.Typer) -> None:
    app.command("export")(export_cmd)
