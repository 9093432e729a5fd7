"""Options shared by several commands (one definition each)."""

import typer

from sage_ft_tui.engine.methods.registry import task_names

NoTui = typer.Option(False, "--no-tui", help="Headless: no full-screen app.")
TASK_HELP = " | ".join(task_names())
TaskOpt = typer.Option(None, "--task", "-t", help=TASK_HELP)
FromRunOpt = typer.Option(
    None, "--from-run", help="Start from this finished run's adapter (SFT → DPO, or more SFT); its base model."
)
RewardOpt = typer.Option(
    None, "--reward", help="grpo: exact_match | number_match | format | length | FILE.py:FUNCTION (repeatable)."
)
ModelOpt = typer.Option(None, "--model", "-m", help="Hub id, local path, or tiny-demo.")
DataOpt = typer.Option(None, "--data", "-d", help="Data file or folder (repeatable).")
NameOpt = typer.Option(None, "--name", help="Run name (default: task-model-timestamp).")
PresetOpt = typer.Option(None, "--preset", help="rtx_3060 | rtx_4090 | a100 | h100 | minimal | cpu | auto")
EpochsOpt = typer.Option(None, "--epochs", help="Training epochs.")
StepsOpt = typer.Option(None, "--max-steps", help="Stop after this many optimizer steps.")
LenOpt = typer.Option(None, "--max-length", help="Max tokens per sample.")
LrOpt = typer.Option(None, "--lr", help="Learning rate.")
SetOpt = typer.Option(None, "--set", help="Any config field: key=value (dotted, repeatable).")
JsonEventsOpt = typer.Option(False, "--json", help="Print events as JSON lines.")

# Planning for a machine (`estimate`, and `--preset auto` on start/run/quickstart): one definition.
GpuOpt = typer.Option(
    None, "--gpu", help='Plan for this card, not this machine: "RTX 4090", "A100 80GB", "H100 80GB", "H200"...'
)
VramOpt = typer.Option(None, "--vram", help="Plan for a GPU with this many GiB.")
GpusOpt = typer.Option(
    None,
    "--gpus",
    help="Plan over this many GPUs (the target's, or this machine's first ones): DDP when a copy fits one, "
    "FSDP sharding when it does not.",
)
PrecisionOpt = typer.Option(None, "--precision", help="auto | bf16 | fp16 | fp32")
NotifyOpt = typer.Option(
    None,
    "--notify",
    help="Tell this apprise URL when the run completes or fails (repeatable): ntfy://TOPIC, "
    "json://HOST:PORT/PATH, slack://..., mailto://... (needs the notify extra; also SAGE_FT_NOTIFY).",
)
