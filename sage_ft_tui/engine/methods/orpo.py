"""ORPO: pairs, no reference model; learns the answers and the preference at once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from sage_ft_tui.engine.methods.spec import MethodSpec

if TYPE_CHECKING:
    from sage_ft_tui.engine.config.schema import RunConfig


def orpo_trainer(cfg: RunConfig, args: Callable[[type], dict], kw: dict):
    from trl.experimental.orpo import ORPOConfig

    from sage_ft_tui.engine.methods.trainers.preference import ORPOPairs, fitting_kw

    t = cfg.training
    config = ORPOConfig(
        **args(ORPOConfig), max_length=t.max_length, remove_unused_columns=False, beta=cfg.preference.beta
    )
    return ORPOPairs(args=config, **fitting_kw(kw, t.max_length))


METHOD = MethodSpec(
    "orpo",
    "pairs · no reference",
    "ORPO: pairs, no reference model (less memory); learns answers and preference at once.",
    orpo_trainer,
    order=20,
    reference_free=True,
)
