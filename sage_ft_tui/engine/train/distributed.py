"""Several processes: DDP (a full replica per GPU), FSDP2 (parameters sharded over the GPUs,
LoRA and QLoRA alike) or DeepSpeed ZeRO-3, all through transformers' Trainer/accelerate.

`training.sharding` picks one; `auto` keeps DDP while a replica fits one GPU and shards
with FSDP2 when the estimate says it fits only sharded (engine/config/hardware_fit.py decides
and says so). Multi-node stays accelerate's own launcher (docs/MULTI_NODE.md);
`slurm_script` writes the sbatch file for it. Never imports torch at module level.
"""

from __future__ import annotations

import importlib.util
import shlex
import sys
from pathlib import Path
from typing import Any, Optional

from sage_ft_tui.engine.errors import SageError

STRATEGIES = ("auto", "ddp", "fsdp", "deepspeed")


def world_size() -> int:
    import os

    return int(os.environ.get("WORLD_SIZE", "1"))


def strategy(cfg) -> str:
    """The strategy a run uses: `training.sharding`, with auto = DDP (the plan sets fsdp
    explicitly when a replica does not fit one GPU)."""
    s = cfg.training.sharding
    return "ddp" if s == "auto" else s


def trainer_args(cfg) -> dict[str, Any]:
    """TrainingArguments fields for the strategy (empty for one process or DDP)."""
    s = strategy(cfg)
    if world_size() <= 1 or s == "ddp":
        return {}
    if s == "deepspeed":
        if importlib.util.find_spec("deepspeed") is None:
            raise SageError(
                "training.sharding deepspeed needs DeepSpeed",
                kind="config",
                hint="pip install deepspeed (on the GPU server), or use training.sharding fsdp",
            )
        return {"deepspeed": deepspeed_config(cfg)}
    return {"fsdp": "full_shard auto_wrap", "fsdp_config": fsdp_config()}


def fsdp_config() -> dict[str, Any]:
    """FSDP2 (fully_shard): each decoder layer its own unit (accelerate takes the classes from
    the model's _no_split_modules), resharded after forward; full state dict gathered for
    saving (the adapter is small). QLoRA: the 4-bit weights are stored in the compute dtype
    (bnb_4bit_quant_storage, set in load_model) so FSDP shards them like any parameter."""
    conf: dict[str, Any] = {
        "version": 2,
        "reshard_after_forward": True,
        "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
        "state_dict_type": "FULL_STATE_DICT",
        "cpu_ram_efficient_loading": False,
        "activation_checkpointing": False,
    }
    return conf


def deepspeed_config(cfg) -> dict[str, Any]:
    """ZeRO-3 with the Trainer filling "auto" values from its own arguments."""
    t = cfg.training
    return {
        "zero_optimization": {
            "stage": 3,
            "overlap_comm": True,
            "contiguous_gradients": True,
            "stage3_gather_16bit_weights_on_model_save": True,
            "stage3_prefetch_bucket_size": "auto",
            "stage3_param_persistence_threshold": "auto",
            "reduce_bucket_size": "auto",
        },
        "bf16": {"enabled": "auto"},
        "fp16": {"enabled": "auto"},
        "train_micro_batch_size_per_gpu": t.micro_batch_size,
        "gradient_accumulation_steps": t.grad_accumulation,
        "gradient_clipping": "auto",
        "train_batch_size": "auto",
    }


def fsdp_on_cpu(trainer) -> bool:
    """Turn FSDP on for a several-process CPU (gloo) run, as accelerate does for GPUs.

    accelerate's AcceleratorState chooses DistributedType.FSDP only inside its branch for the
    GPU kinds of run (MULTI_GPU, MULTI_XPU, ...: accelerate/state.py, "if ... fsdp_plugin is not
    None: self.distributed_type = DistributedType.FSDP"); MULTI_CPU skips it, drops the plugin
    the Trainer built and the run silently stays DDP. torch's FSDP2 (`fully_shard`) itself runs
    on a CPU mesh over gloo, so this does the three things that branch does (type, plugin,
    mixed precision); from here on the run takes the GPU path unchanged: the Trainer's FSDP2
    preparation (accelerate's fsdp2_prepare_model), its full-state-dict gathering and saving.
    True when it switched."""
    plugin_args = getattr(trainer.args, "fsdp_plugin_args", None)
    if plugin_args is None:
        return False
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    state = trainer.accelerator.state
    if state.distributed_type != DistributedType.MULTI_CPU:
        return False
    plugin = FullyShardedDataParallelPlugin(**plugin_args)
    if state.mixed_precision != "no":
        plugin.set_mixed_precision(state.mixed_precision)
    state.fsdp_plugin = plugin
    state.distributed_type = DistributedType.FSDP
    PartialState._shared_state["distributed_type"] = DistributedType.FSDP
    trainer.is_fsdp_enabled = True  # the Trainer read it from the state when it built the accelerator
    return True


def sharded(trainer) -> bool:
    return bool(getattr(trainer, "is_fsdp_enabled", False) or getattr(trainer, "is_deepspeed_enabled", False))


def _held(p) -> tuple[int, int]:
    """(elements this process holds, elements of the whole parameter)."""
    if hasattr(p, "to_local"):  # FSDP2: a DTensor, this rank's shard is its local tensor
        return p.to_local().numel(), p.numel()
    if hasattr(p, "ds_tensor"):  # ZeRO-3: the partition lives beside an empty parameter
        return p.ds_tensor.numel(), int(p.ds_numel)
    return p.numel(), p.numel()


def placement(model) -> dict[str, Any]:
    """How the parameters really lie, read from the prepared model, not from the config:
    `sharding` ("fsdp2", "deepspeed-zero3", "ddp", "none") and, for every rank, the share of
    all parameters and of the trainable (LoRA) ones it holds. A collective when several
    processes run: every rank must call it (the start callback runs on all of them)."""
    import torch.distributed as dist

    held = total = t_held = t_total = 0
    kinds = set()
    for p in model.parameters() if model is not None else ():
        h, n = _held(p)
        held, total = held + h, total + n
        if p.requires_grad:
            t_held, t_total = t_held + h, t_total + n
        kinds.add("fsdp2" if hasattr(p, "to_local") else "deepspeed-zero3" if hasattr(p, "ds_tensor") else "")
    mine = [held, t_held]
    ranks: list[Any] = [mine]
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        ranks = [None] * dist.get_world_size()
        dist.all_gather_object(ranks, mine)
    real = sorted(k for k in kinds if k)
    name = real[0] if real else "ddp" if len(ranks) > 1 else "none"
    return {
        "sharding": name,
        "params_total": total,
        "trainable_total": t_total,
        # per rank: fraction of all parameters / of the trainable ones it holds (1.0 = a full replica)
        "params_share": [round(r[0] / max(total, 1), 4) for r in ranks],
        "trainable_share": [round(r[1] / max(t_total, 1), 4) for r in ranks],
    }


def full_state_dict(trainer) -> Optional[dict]:
    """The model's full state dict, gathered (a collective under FSDP/ZeRO-3: every rank must
    call it; rank 0 gets it); None without sharding (save_pretrained reads the model)."""
    if not sharded(trainer):
        return None
    return trainer.accelerator.get_state_dict(trainer.model)


def slurm_script(run: Path, nodes: int, gpus_per_node: int, *, partition: Optional[str] = None, hours: int = 24) -> str:
    """An sbatch script that starts the worker under `accelerate launch` on every node
    (one task a node; rank 0 = the first node; the run folder must be on shared storage)."""
    if nodes < 1 or gpus_per_node < 1:
        raise SageError(f"--slurm needs at least 1 node and 1 GPU, got {nodes} × {gpus_per_node}", hint="--slurm 2")
    run = Path(run).absolute()
    py = shlex.quote(sys.executable)
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={run.name[:60]}",
        f"#SBATCH --nodes={nodes}",
        "#SBATCH --ntasks-per-node=1",
        f"#SBATCH --gpus-per-node={gpus_per_node}",
        f"#SBATCH --time={hours}:00:00",
        f"#SBATCH --output={shlex.quote(str(run))}/slurm-%j.log",
    ]
    if partition:
        lines.append(f"#SBATCH --partition={partition}")
    lines += [
        "set -euo pipefail",
        "# rank 0 (the first node) writes events.jsonl, status.json and the adapter; the run",
        "# folder must be visible at the same path on every node (shared filesystem).",
        'MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
        "MASTER_PORT=${MASTER_PORT:-29500}",
        "export HF_HUB_OFFLINE=1",
        "srun --kill-on-bad-exit=1 bash -c '"
        + f"{py} -m accelerate.commands.launch --num_machines {nodes} "
        + f"--num_processes {nodes * gpus_per_node} --machine_rank $SLURM_NODEID "
        + "--main_process_ip '\"$MASTER_ADDR\"' --main_process_port '\"$MASTER_PORT\"' "
        + "--rdzv_backend static --multi_gpu --mixed_precision no --dynamo_backend no "
        + f"-m sage_ft_tui.engine.worker {shlex.quote(str(run))}'",
        "",
    ]
    return "\n".join(lines)


__all__ = [
    "STRATEGIES",
    "strategy",
    "trainer_args",
    "fsdp_config",
    "deepspeed_config",
    "full_state_dict",
    "placement",
    "fsdp_on_cpu",
    "slurm_script",
]
