"""SimPO: pairs, no reference model; a length-normalised reward with a target margin (TRL's CPO
trainer with its simpo loss and no behaviour-cloning term)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from sage_ft_tui.engine.methods.spec import MethodSpec

if TYPE_CHECKING:
    from sage_ft_tui.engine.config.schema import RunConfig


def simpo_trainer(cfg: RunConfig, args: Callable[[type], dict], kw: dict):
    from trl.experimental.cpo import CPOConfig

    from sage_ft_tui.engine.methods.trainers.preference import CPOPairs, fitting_kw

    p, t = cfg.preference, cfg.training
    config = CPOConfig(
        **args(CPOConfig),
        max_length=t.max_length,
        remove_unused_columns=False,
        beta=p.beta,
        loss_type="simpo",
        cpo_alpha=0.0,
        simpo_gamma=p.simpo_gamma,
    )
    return CPOPairs(args=config, **fitting_kw(kw, t.max_length))


METHOD = MethodSpec(
    "simpo",
    "pairs · length-normalised",
    "SimPO: pairs, no reference model; a length-normalised reward with a margin.",
    simpo_trainer,
    order=30,
    reference_free=True,
    settings=("beta", "simpo_gamma"),
)
