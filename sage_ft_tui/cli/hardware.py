"""`sage-ft-tui estimate`: will this model train here? The memory breakdown against free VRAM."""

from __future__ import annotations

import json
from typing import Optional

import typer

from sage_ft_tui.cli.base import fail
from sage_ft_tui.cli.options import GpuOpt, GpusOpt, PrecisionOpt, VramOpt
from sage_ft_tui.engine.errors import SageError


def build_estimate(
    model: str,
    preset: Optional[str],
    max_length: Optional[int],
    batch: Optional[int],
    quantization: Optional[str],
    gradient_checkpointing: Optional[bool],
    lora_r: Optional[int],
    *,
    gpu: Optional[str] = None,
    vram: Optional[float] = None,
    precision: Optional[str] = None,
    gpus: Optional[int] = None,
):
    """(estimate, snapshot, explanation lines) for the flags given; RunConfig defaults otherwise.
    `gpu` / `vram`: plan for that card (`gpus` of them) instead of this machine."""
    from sage_ft_tui.cli.planning import Target
    from sage_ft_tui.engine.config.build import Target as Plan
    from sage_ft_tui.engine.config.build import build_config, given
    from sage_ft_tui.engine.config.sections import QUANTIZATIONS
    from sage_ft_tui.engine.hardware.estimate import estimate_for_config
    from sage_ft_tui.engine.hardware.probe import snapshot

    if quantization is not None and quantization not in QUANTIZATIONS:
        raise SageError(
            f"--quantization {quantization!r}: not one of {', '.join(QUANTIZATIONS)}", hint="e.g. --quantization 4bit"
        )
    for flag, v in (("--max-length", max_length), ("--batch", batch), ("--lora-r", lora_r)):
        if v is not None and v <= 0:
            raise SageError(
                f"{flag} must be a positive whole number, got {v}",
                hint=f"e.g. {flag} 2048" if flag == "--max-length" else f"e.g. {flag} 4",
            )
    target = Target(gpu, vram, gpus, precision).check()
    snap = target.snapshot() or snapshot()
    flags = {
        "training.max_length": max_length,
        "training.micro_batch_size": batch,
        "training.gradient_checkpointing": gradient_checkpointing,
        "lora.r": lora_r,
        "model.quantization": quantization,
        **target.flags(),
    }
    if gpus and len(snap.gpus) < gpus and preset != "auto":  # (auto says it in its own plan)
        raise SageError(
            f"--gpus {gpus}: {'this machine has no GPU' if not snap.gpus else f'only {len(snap.gpus)} GPUs here'}",
            hint=f"plan for the machine that will train with --gpu NAME --gpus {gpus} (or --vram GIB)",
            kind="hardware",
        )
    if gpus and gpus > 1 and preset != "auto":  # a fixed preset (or none) on the first N GPUs
        flags["training.gpus"] = [g.index for g in snap.gpus[:gpus]]
    # the engine's one builder: --preset auto is planned for the machine estimated (this one or the target)
    built = build_config(
        file={"model": {"name": model}},
        file_label="--model",
        preset=preset if preset != "auto" else None,
        hardware=snap,
        target=Plan(snap, gpus, target.describe()) if preset == "auto" else None,
        flags=given(flags),
    )
    lines: list[str] = list(built.fit.lines) if built.fit is not None else []
    if lines and any(v is not None for v in (batch, quantization, gradient_checkpointing, lora_r)):
        lines.append("(the flags given override these choices in the estimate above)")
    return estimate_for_config(built.config, snap), snap, lines, built.config


def parse_tokens(text: Optional[str]) -> Optional[int]:
    """--tokens as people write it: 20000000, 2e7, 20M, 1.5B, 500k."""
    if text is None:
        return None
    t = text.strip().lower().replace(",", "").replace("_", "")
    scale = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9}.get(t[-1:], 1)
    try:
        n = float(t[:-1] if scale != 1 else t) * scale
    except ValueError:
        n = -1
    if not n >= 1:
        raise SageError(f"--tokens {text!r}: not a positive number of tokens", hint="e.g. --tokens 20M or 2e7")
    return int(n)


def build_cost(
    config,
    snap,
    gpu: Optional[str],
    gpus: Optional[int],
    tokens: Optional[int],
    price: Optional[float],
    vram: Optional[float] = None,
):
    """The time and cost estimate (engine/runs/cost.py) for the card planned for, or this machine's
    GPU; None when neither --gpu, --price-per-hour nor --tokens asks for one."""
    from sage_ft_tui.engine.runs.cost import estimate_cost

    if gpu is None and price is None and tokens is None:
        return None
    if gpu is None and (vram is not None or not snap.gpus):
        why = "--vram names no card" if vram is not None else "this machine has none"
        raise SageError(
            f"time and cost need a GPU card's peak: {why}",
            hint='name the card with --gpu, e.g. --gpu "H100 80GB"',
            kind="config",
        )
    card = gpu or snap.gpus[0].name
    return estimate_cost(config, card, gpus=gpus, tokens=tokens, tokens_basis="--tokens", price_per_hour=price)


def print_estimate(est, snap, lines, cost=None) -> None:
    from rich.console import Console
    from rich.table import Table

    from sage_ft_tui.engine.fsutil import GiB

    console = Console()
    where = snap.gpus[0].label if snap.gpus else "CPU (no GPU)"
    shards = next((n for n in est.notes if n.startswith("sharded over")), "")
    if shards:
        where += f", {shards.split(' (')[0]}"
    title = f"{est.model} — {est.micro_batch} × {est.max_length} tokens on {where}"
    table = Table(title=title, title_justify="left", show_edge=False)
    table.add_column("part")
    table.add_column("GiB", justify="right")
    table.add_column("detail", style="dim")
    for part, b, detail in est.breakdown():
        table.add_row(part, f"{b / GiB:.2f}", detail)
    table.add_section()
    table.add_row("total", f"{est.total / GiB:.2f}", "peak per GPU" if est.device == "cuda" else "peak RAM")
    if est.free is not None:
        table.add_row("free", f"{est.free / GiB:.2f}", "VRAM now" if est.device == "cuda" else "RAM now")
        verdict = "[green]fits[/]" if est.fits else "[red]does not fit[/]"
        table.add_row(f"budget ({est.budget_fraction:.0%})", f"{est.budget / GiB:.2f}", verdict)
    console.print(table)
    for n in est.notes:
        console.print(f"note: {n}")
    if lines:
        console.print("auto preset:")
        for line in lines:
            console.print(f"  {line}")
    if est.fits is False:
        console.print(
            "[yellow]try[/]: --quantization 4bit, a smaller --batch or --max-length, or --gradient-checkpointing"
        )
    if cost is not None:
        console.print("time and cost:")
        for label, value in cost.lines():
            console.print(f"  {label:<12} {value}", highlight=False)
        if cost.tokens is None:
            console.print("  (give --tokens N, e.g. --tokens 20M, for the whole run)", style="dim")


def register(app: typer.Typer) -> None:
    @app.command()
    def estimate(
        model: str = typer.Option(
            ..., "--model", "-m", help="Hub id (from the local cache), folder with config.json, or tiny-demo."
        ),
        preset: Optional[str] = typer.Option(
            None, "--preset", help="rtx_3060 | rtx_4090 | a100 | h100 | minimal | cpu | auto"
        ),
        max_length: Optional[int] = typer.Option(None, "--max-length", help="Tokens per sample."),
        batch: Optional[int] = typer.Option(None, "--batch", help="Micro-batch size per GPU."),
        quantization: Optional[str] = typer.Option(None, "--quantization", "-q", help="none | 8bit | 4bit"),
        gradient_checkpointing: Optional[bool] = typer.Option(
            None, "--gradient-checkpointing/--no-gradient-checkpointing", help="Recompute activations in backward."
        ),
        lora_r: Optional[int] = typer.Option(None, "--lora-r", help="LoRA rank."),
        gpu: Optional[str] = GpuOpt,
        vram: Optional[float] = VramOpt,
        gpus: Optional[int] = GpusOpt,
        precision: Optional[str] = PrecisionOpt,
        price: Optional[float] = typer.Option(
            None, "--price-per-hour", help="Price of one GPU-hour: adds the run's cost to the time plan."
        ),
        tokens: Optional[str] = typer.Option(
            None, "--tokens", help="Tokens the run trains on (20M, 2e7): the time plan covers the whole run."
        ),
        json_out: bool = typer.Option(False, "--json", help="Print the estimate as JSON."),
        no_tui: bool = typer.Option(False, "--no-tui", help="Headless (this command always is)."),
    ):
        """Peak training memory from config.json alone, compared with free VRAM (nothing downloaded)."""
        try:
            n_tokens = parse_tokens(tokens)
            est, snap, lines, config = build_estimate(
                model,
                preset,
                max_length,
                batch,
                quantization,
                gradient_checkpointing,
                lora_r,
                gpu=gpu,
                vram=vram,
                precision=precision,
                gpus=gpus,
            )
            cost = build_cost(config, snap, gpu, gpus, n_tokens, price, vram)
        except SageError as e:
            fail(e)
        if json_out:
            d = est.to_dict()
            d["hardware"] = snap.summary()
            if lines:
                d["auto"] = lines
            if cost is not None:
                d["time"] = cost.to_dict()
            typer.echo(json.dumps(d))
            return
        print_estimate(est, snap, lines, cost)
