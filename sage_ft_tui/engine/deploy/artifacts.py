"""What a merge reads and writes, without torch (the TUI, serving, evaluation and export use
it): which adapter of a run (the final one, checkpoint N, or the latest by step number), where
the merged model goes and whether it passed its self-check, a model folder's dtype and the
size a merge will take, and the headless merge command the TUI runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional, Union

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.fsutil import read_json
from sage_ft_tui.engine.runs.layout import CHECKPOINT_PREFIX, RunLayout, merged_report
from sage_ft_tui.engine.runs.state import checkpoints, derive_state, no_adapter_hint

DTYPES = ("auto", "float32", "bfloat16", "float16")

_BYTES = {"float32": 4, "float": 4, "bfloat16": 2, "float16": 2, "half": 2, "float64": 8, "int8": 1, "uint8": 1}

# Relative tolerance (max |Δlogit| / max |logit|) of the merged model against base+adapter.
TOLERANCE = {"float32": 1e-4, "bfloat16": 3e-2, "float16": 1e-2}

CheckpointRef = Union[None, int, str]


def _is_adapter_dir(d: Path) -> bool:
    return (d / "adapter_config.json").is_file() and any(
        (d / n).is_file() for n in ("adapter_model.safetensors", "adapter_model.bin")
    )


def _adapter_in(d: Path) -> Optional[Path]:
    for cand in (d, RunLayout(d).adapter):
        if _is_adapter_dir(cand):
            return cand
    return None


def find_adapter(run: Path, checkpoint: CheckpointRef = None) -> tuple[Path, str]:
    """(adapter folder, label): the final adapter, checkpoint N, or the latest by step number."""
    run = Path(run)
    if checkpoint is None or checkpoint == "":
        final = RunLayout(run).adapter
        found = _adapter_in(final) if final.is_dir() else None
        if found:
            return found, "final adapter"
        done = checkpoints(run)
        state = derive_state(run)[0]
        more = f" (run state: {state})"
        if done:
            raise SageError(
                f"run {run.name} has no final adapter{more}",
                where=str(final),
                hint=f"merge a checkpoint instead: --checkpoint latest (step {done[-1].name.rsplit('-', 1)[1]}) or --checkpoint N",
            )
        raise SageError(
            f"run {run.name} has no adapter and no complete checkpoint{more}",
            where=str(run),
            hint=no_adapter_hint(run),
        )
    done = checkpoints(run)
    steps = {int(p.name.rsplit("-", 1)[1]): p for p in done}
    if isinstance(checkpoint, str) and checkpoint.strip().lower() == "latest":
        if not done:
            raise SageError(
                f"run {run.name} has no complete checkpoint",
                where=str(RunLayout(run).checkpoints),
                hint="merge the final adapter (no --checkpoint), or train longer",
            )
        path = done[-1]
    else:
        try:
            step = int(str(checkpoint).strip().removeprefix(CHECKPOINT_PREFIX))
        except ValueError:
            raise SageError(
                f"--checkpoint {checkpoint!r}: expected a step number or 'latest'",
                hint="e.g. --checkpoint 200 or --checkpoint latest",
            ) from None
        if step not in steps:
            half = RunLayout(run).checkpoint(step).is_dir()
            have = ", ".join(str(s) for s in sorted(steps)) or "none"
            why = "is incomplete (no sage_complete.json)" if half else "does not exist"
            raise SageError(
                f"checkpoint {step} of run {run.name} {why}",
                where=str(RunLayout(run).checkpoints),
                hint=f"complete checkpoints: {have}",
            )
        path = steps[step]
    found = _adapter_in(path)
    if not found:
        raise SageError(
            f"{path.name} holds no LoRA adapter (no adapter_config.json + adapter_model.safetensors)",
            where=str(path),
            hint="pick another --checkpoint",
        )
    return found, path.name


def default_output(run: Path) -> Path:
    return RunLayout(run).merged


def merged_ok(path: Path) -> bool:
    """A merged folder we wrote and whose self-check passed."""
    rep = read_json(merged_report(path), {}) or {}
    return bool(rep.get("self_check", {}).get("passed")) and (Path(path) / "config.json").is_file()


def _weights_bytes(d: Path) -> int:
    files = list(d.glob("*.safetensors")) or list(d.glob("*.bin")) or list(d.glob("*.pt"))
    return sum(f.stat().st_size for f in files if f.is_file())


def config_dtype(model_dir: Path) -> str:
    """The dtype a model folder's config.json names (its text model's for a vision model), e.g.
    "bfloat16"; "" when it names none or cannot be read."""
    try:
        cfg = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    if not isinstance(cfg, dict):
        return ""
    text = cfg.get("text_config")
    text = text if isinstance(text, dict) else {}
    dt = cfg.get("dtype") or cfg.get("torch_dtype") or text.get("dtype") or text.get("torch_dtype") or ""
    return str(dt).replace("torch.", "")


def resolve_dtype(dtype: str, cfg_dtype: str, base: Path) -> str:
    if dtype not in DTYPES:
        raise SageError(f"--dtype {dtype!r} is not one of {', '.join(DTYPES)}", hint="e.g. --dtype bfloat16")
    if dtype != "auto":
        return dtype
    if cfg_dtype and cfg_dtype != "auto":
        return cfg_dtype
    d = config_dtype(base)
    return d if d in TOLERANCE else "float32"


def expected_size(base: Path, dtype: str) -> int:
    """Bytes the merged weights will take: the base's weights re-expressed in `dtype`."""
    on_disk = _weights_bytes(base)
    src = _BYTES.get(config_dtype(base) or "float32", 2)
    return int(on_disk * _BYTES.get(dtype, 2) / src)


def merge_cli_command(
    run: str,
    *,
    checkpoint: CheckpointRef = None,
    dtype: str = "auto",
    force: bool = False,
    output: Optional[str] = None,
) -> list[str]:
    """The headless command the TUI runs in a subprocess (progress as JSON lines)."""
    cmd = [sys.executable, "-m", "sage_ft_tui", "merge", str(run), "--json"]
    if checkpoint not in (None, ""):
        cmd += ["--checkpoint", str(checkpoint)]
    if dtype and dtype != "auto":
        cmd += ["--dtype", dtype]
    if force:
        cmd.append("--force")
    if output:
        cmd += ["--output", str(output)]
    return cmd


def read_report(run: Path) -> dict:
    return read_json(RunLayout(run).merge_report, {}) or {}


__all__ = [
    "find_adapter",
    "default_output",
    "merged_ok",
    "config_dtype",
    "resolve_dtype",
    "expected_size",
    "merge_cli_command",
    "read_report",
]
