"""The preference task: learn which answer is better, by one of the preference methods (each a
descriptor module of this package with a `METHOD`: dpo, orpo, simpo, kto, ...). `auto` picks
kto for rows labelled good/bad, else dpo.

With LoRA the reference model is the base with the adapter disabled (TRL's PEFT path: no
second copy in memory); starting from a previous run's adapter, TRL keeps a frozen copy of
that adapter as the reference (the SFT model, as DPO wants). Reference log-probs are
precomputed once when the run sees its samples more than once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional

from sage_ft_tui.engine.data.formats import PREFERENCE_FORMATS
from sage_ft_tui.engine.methods.registry import method_spec
from sage_ft_tui.engine.methods.spec import TaskSpec

if TYPE_CHECKING:
    from sage_ft_tui.engine.config.schema import RunConfig

# TRL's metric names -> our event fields (docs/EVENTS.md); KTO logs kl too
METRICS = {
    "rewards/chosen": "rewards_chosen",
    "rewards/rejected": "rewards_rejected",
    "rewards/margins": "rewards_margin",
    "rewards/accuracies": "rewards_accuracy",
    "kl": "kl",
}
# what `auto` picks: (for pairs, for rows labelled good/bad)
AUTO_PICKS = ("dpo", "kto")


def resolved_method(cfg: RunConfig, labelled: bool) -> str:
    """preference.method with auto settled by the data: kto for labelled rows, else dpo."""
    m = cfg.preference.method
    return AUTO_PICKS[labelled] if m == "auto" else m


def precompute_ref(cfg: RunConfig, n_train: int) -> bool:
    """Precompute reference log-probs when the run passes over its samples more than once:
    one forward per sample then replaces one per sample per epoch."""
    p = cfg.preference
    if (p.method != "auto" and method_spec(p.method).reference_free) or p.precompute_ref == "off":
        return False
    if p.precompute_ref == "on":
        return True
    t = cfg.training
    if t.max_steps > 0:
        seen = t.max_steps * t.micro_batch_size * t.grad_accumulation
        return seen > n_train
    return t.epochs > 1


def unpairs(cfg: RunConfig) -> bool:
    """The run's method trains on labelled rows, so the data step splits each pair in two."""
    m = cfg.preference.method
    return cfg.task == "preference" and m != "auto" and method_spec(m).labelled


def pairs_only(method: str) -> bool:
    """The method trains on chosen/rejected pairs only (rows labelled good/bad will not do)."""
    return method != "auto" and not method_spec(method).labelled


def check_config(cfg: RunConfig) -> Optional[str]:
    m = cfg.preference.method
    if (m == "auto" or method_spec(m).labelled) and cfg.training.micro_batch_size < 2:
        return (
            "preference.method / training.micro_batch_size: kto (which auto picks for labelled rows) needs a "
            "micro-batch of 2 or more (its KL term pairs each row with another of the same batch)"
        )
    return None


def preference_trainer(cfg: RunConfig, args: Callable[[type], dict], kw: dict):
    """The trainer of the run's method; `kw["train_dataset"]` holds our tokenized rows
    (prompt_ids + chosen_ids/rejected_ids, or completion_ids + label)."""
    method = resolved_method(cfg, "label" in kw["train_dataset"].column_names)
    return method_spec(method).trainer(cfg, args, kw)


TASKS = (
    TaskSpec(
        "preference",
        "Preference tuning",
        # no method named here: the Method step lists them from the registry, so a new one needs no edit
        "Learn which of two answers is better, or from answers marked good or bad; the Method step picks how.",
        '{"prompt": ..., "chosen": ..., "rejected": ...} or {"prompt": ..., "completion": ..., "label": true|false}',
        PREFERENCE_FORMATS,
        {"prompt": "What is 2 + 2?", "chosen": "4.", "rejected": "5."},
        preference_trainer,
        order=60,
        # a pair is chosen + rejected (KTO: the answer + the KL answer): twice an SFT sample's memory
        sequences_per_sample=2,
        packs=False,
        trainer_rows=True,
        records="preference",
        section="preference",
        wizard_steps=("Method",),
        metrics=METRICS,
        check_config=check_config,
    ),
)
