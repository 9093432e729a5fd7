"""DPO: pairs, with a reference model (TRL's DPOTrainer and its loss variants, preference.loss_type)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from sage_ft_tui.engine.methods.preference import precompute_ref
from sage_ft_tui.engine.methods.spec import MethodSpec

if TYPE_CHECKING:
    from sage_ft_tui.engine.config.schema import RunConfig


def dpo_trainer(cfg: RunConfig, args: Callable[[type], dict], kw: dict):
    from trl import DPOConfig

    from sage_ft_tui.engine.methods.trainers.preference import DPOPairs

    p = cfg.preference
    config = DPOConfig(
        **args(DPOConfig),
        max_length=cfg.training.max_length,
        remove_unused_columns=False,
        beta=p.beta,
        loss_type=[p.loss_type],
        label_smoothing=p.label_smoothing,
        precompute_ref_log_probs=precompute_ref(cfg, len(kw["train_dataset"])),
    )
    return DPOPairs(args=config, **kw)


METHOD = MethodSpec(
    "dpo",
    "pairs · reference model",
    "DPO: learns from pairs; a frozen copy of the model keeps it close to the start.",
    dpo_trainer,
    order=10,
    settings=("beta", "loss_type", "label_smoothing", "precompute_ref"),
)
