"""Real PEFT adapters on the tiny model, with non-zero B matrices so merges and
self-checks have something to compare (a fresh LoRA is the identity)."""

from __future__ import annotations

from pathlib import Path


def make_adapter(base: Path, out: Path, seed: int, r: int = 8, scale: float = 0.05) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    pm = get_peft_model(
        AutoModelForCausalLM.from_pretrained(str(base)), LoraConfig(r=r, lora_alpha=2 * r, target_modules="all-linear")
    )
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * scale)
    pm.save_pretrained(str(out))
    return out


def adapter_run(home: Path, name: str, base: Path, seed: int, *, merge: bool = True) -> Path:
    """A chat run holding such an adapter (merged and self-checked unless merge=False)."""
    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.deploy.merge import merge_run
    from sage_ft_tui.engine.runs.create import create_run

    run = create_run(
        RunConfig.from_dict({"name": name, "task": "chat", "data": {"paths": ["x"]}}), home=home, prepare=False
    )
    make_adapter(base, run / "adapter", seed)
    if merge:
        assert merge_run(run)["self_check"]["passed"]
    return run


def serving(run: Path):
    """Generator for a fixture: `transformers serve` on `run` (a free port), stopped after."""
    from sage_ft_tui.engine.deploy import serve as sv
    from sage_ft_tui.engine.deploy.serve_command import serve_command

    info = sv.start(serve_command(run, backend="transformers", port=0), timeout=180)
    try:
        yield run, info
    finally:
        try:
            sv.stop(run)
        except Exception:
            pass
