"""`doctor`: versions, CUDA, GPUs, disk, and what is missing — without importing torch
unless it is installed (then only to ask about CUDA)."""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import sys
from typing import Optional

from sage_ft_tui import __version__
from sage_ft_tui.engine.fsutil import GiB
from sage_ft_tui.engine.hardware.estimate import CPU_BF16_MIN_HIDDEN
from sage_ft_tui.engine.hardware.probe import get_backend
from sage_ft_tui.engine.models.family_facts import family_facts
from sage_ft_tui.engine.models.modules import local_model_dir
from sage_ft_tui.engine.paths import runs_home
from sage_ft_tui.engine.train.attention import choose_attention
from sage_ft_tui.engine.train.model import cpu_bf16_fast

PACKAGES = (
    "torch",
    "transformers",
    "peft",
    "trl",
    "datasets",
    "accelerate",
    "tokenizers",
    "textual",
    "typer",
    "pydantic",
    "openai",
    "nvidia-ml-py",
    "bitsandbytes",
    "flash-attn",
    "liger-kernel",
    "vllm",
    "fastapi",
    "uvicorn",
)


def _version(name: str):
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def training_paths(cuda: bool, bf16: bool) -> dict[str, str]:
    """Which attention/kernel/precision path a run will take here, and why (one line each)."""
    dtype = ("bfloat16" if bf16 else "float16") if cuda else "float32"
    att = choose_attention(cuda=cuda, dtype=dtype)
    out = {"attention": f"{att.name}: {att.why}"}
    if cuda:
        liger = _version("liger-kernel")
        out["kernels"] = (
            f"Liger RMSNorm/RoPE/SwiGLU (liger-kernel {liger}); TRL's fused LM-head loss"
            if liger and os.environ.get("SAGE_FT_LIGER", "1") != "0"
            else "no liger-kernel: plain layers; TRL's fused LM-head loss (pip install liger-kernel for fused layers)"
        )
        out["precision"] = f"{'bf16' if bf16 else 'fp16'} (precision auto)"
        out["quantization"] = (
            f"4/8-bit QLoRA with paged optimizers (bitsandbytes {_version('bitsandbytes')})"
            if _version("bitsandbytes")
            else "no bitsandbytes: 4/8-bit QLoRA unavailable"
        )
    else:
        out["precision"] = (
            f"auto: bf16 autocast for models with hidden size >= {CPU_BF16_MIN_HIDDEN} (this CPU has native bf16), "
            "fp32 below"
            if cpu_bf16_fast()
            else "auto: fp32 (no AMX/AVX512-BF16 on this CPU)"
        )
        out["kernels"] = "LM head over answer positions only (compact head); no fused kernels on CPU"
    return out


def model_report(ref: str, *, cuda: bool = False, bf16: bool = False) -> dict:
    """What `doctor --model REF` says of a model on this machine: its family, its template's
    end of turn, stop tokens, system-prompt placement and history, and the attention a run takes."""
    mdir = local_model_dir(ref)
    if mdir is None:
        return {"ref": ref, "path": None, "problem": f"{ref} is not on this machine (no folder, not in the HF cache)"}
    dtype = ("bfloat16" if bf16 else "float16") if cuda else "float32"
    att = choose_attention(cuda=cuda, dtype=dtype, mdir=mdir)
    return {"ref": ref, "path": str(mdir), **family_facts(mdir), "attention": f"{att.name}: {att.why}"}


def run_doctor(model: Optional[str] = None) -> dict:
    """`model`: also describe that model (family, template, attention) — `doctor --model`."""
    pk = {n: _version(n) for n in PACKAGES}
    problems = []
    for req in ("torch", "transformers", "peft", "trl", "datasets", "accelerate"):
        if not pk[req]:
            problems.append(f"{req} is not installed: pip install 'sage-ft-tui'")
    cuda = None
    if pk["torch"]:
        import torch

        if torch.cuda.is_available():
            cuda = f"{torch.version.cuda} ({torch.cuda.device_count()} device(s))"
    snap = get_backend().snapshot(disk_path=runs_home())
    note = snap.note
    gpus = [
        {
            "index": g.index,
            "name": g.name,
            "mem_total_gib": g.mem_total / GiB,
            "mem_free_gib": g.mem_free / GiB,
            "bf16": g.bf16,
        }
        for g in snap.gpus
    ]
    cpu = f"{snap.host.cpu_model} ({snap.host.cores} cores)"
    ram = snap.host.ram_total / GiB
    disk = (snap.host.disk_free or 0) / GiB
    if gpus and not cuda and pk["torch"]:
        problems.append("GPUs are present but this torch has no CUDA: install a CUDA build of torch")
    if gpus and not pk["bitsandbytes"]:
        problems.append("bitsandbytes is missing: 4/8-bit QLoRA needs `pip install bitsandbytes`")
    bf16 = bool(gpus and all(g["bf16"] for g in gpus))
    paths = training_paths(bool(cuda), bf16) if pk["torch"] else {}
    described = model_report(model, cuda=bool(cuda), bf16=bf16) if model else None
    if described and described.get("problem"):
        problems.append(f"{described['problem']}: give a model folder or a cached hub id")
    serve_ok = bool(pk["fastapi"] and pk["uvicorn"])
    if not serve_ok and not pk["vllm"]:
        problems.append("no serving backend: pip install 'sage-ft-tui[serve]' (or [vllm] on a GPU server)")
    if disk < 5:
        problems.append(f"only {disk:.1f} GiB free where runs are written ({runs_home()}): set SAGE_FT_HOME elsewhere")
    return {
        "version": __version__,
        "python": sys.version.split()[0],
        "platform": f"{platform.system()} {platform.machine()}",
        "packages": pk,
        "cuda": cuda,
        "gpus": gpus,
        "gpu_note": note,
        "cpu": cpu,
        "ram_gib": ram,
        "disk_free_gib": disk,
        "runs_home": str(runs_home()),
        "backends": {
            "transformers serve": serve_ok,
            "vllm": bool(pk["vllm"]),
            "flash-attn": bool(pk["flash-attn"]),
            "liger-kernel": bool(pk["liger-kernel"]),
        },
        "training_paths": paths,
        **({"model": described} if described else {}),
        "offline": os.environ.get("HF_HUB_OFFLINE") == "1",
        "problems": problems,
    }
