"""CPO (Contrastive Preference Optimization): pairs, no reference model; the preference loss
plus a behaviour-cloning term (the chosen answer's NLL), so the model keeps learning the good
answers while it learns to prefer them. TRL's CPOTrainer with its sigmoid loss and cpo_alpha 1.

This module is all a method is: its descriptor (METHOD, found by methods/registry.py) and its
trainer factory; the trainer class is the pair trainer SimPO shares (methods/trainers)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from sage_ft_tui.engine.methods.spec import MethodSpec

if TYPE_CHECKING:
    from sage_ft_tui.engine.config.schema import RunConfig

BC_WEIGHT = 1.0  # cpo_alpha: the weight of the chosen answer's NLL (CPO's paper and TRL's default)


def cpo_trainer(cfg: RunConfig, args: Callable[[type], dict], kw: dict):
    from trl.experimental.cpo import CPOConfig

    from sage_ft_tui.engine.methods.trainers.preference import CPOPairs, fitting_kw

    t = cfg.training
    config = CPOConfig(
        **args(CPOConfig),
        max_length=t.max_length,
        remove_unused_columns=False,
        beta=cfg.preference.beta,
        loss_type="sigmoid",
        cpo_alpha=BC_WEIGHT,
    )
    return CPOPairs(args=config, **fitting_kw(kw, t.max_length))


METHOD = MethodSpec(
    "cpo",
    "pairs · + chosen NLL",
    "CPO: pairs, no reference model; the preference loss plus the chosen answer's likelihood.",
    cpo_trainer,
    order=50,
    reference_free=True,
)
