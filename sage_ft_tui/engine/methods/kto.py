"""KTO: one answer per row labelled good or bad (pairs are split in two), with a reference model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from sage_ft_tui.engine.methods.preference import precompute_ref
from sage_ft_tui.engine.methods.spec import MethodSpec

if TYPE_CHECKING:
    from sage_ft_tui.engine.config.schema import RunConfig


def kto_trainer(cfg: RunConfig, args: Callable[[type], dict], kw: dict):
    from trl import KTOConfig

    from sage_ft_tui.engine.methods.trainers.preference import KTORows

    p = cfg.preference
    config = KTOConfig(
        **args(KTOConfig),
        max_length=cfg.training.max_length,
        remove_unused_columns=False,
        beta=p.beta,
        desirable_weight=p.desirable_weight,
        undesirable_weight=p.undesirable_weight,
        precompute_ref_log_probs=precompute_ref(cfg, len(kw["train_dataset"])),
        train_sampling_strategy="sequential",  # KTO's KL term pairs neighbours in a fixed order
    )
    return KTORows(args=config, **kw)


METHOD = MethodSpec(
    "kto",
    "rows labelled good/bad",
    "KTO: one answer per row labelled good or bad (pairs are split in two).",
    kto_trainer,
    order=25,
    labelled=True,
    settings=("beta", "desirable_weight", "undesirable_weight", "precompute_ref"),
)
