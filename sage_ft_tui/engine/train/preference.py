"""Preference tuning through TRL's own trainers: DPO (and its loss variants), KTO, ORPO and
SimPO (TRL's CPO trainer with its simpo loss; ORPO and CPO live in trl.experimental).

The data arrives tokenized by engine/data/preference.py (prompt_ids + chosen_ids /
rejected_ids, or completion_ids + label), the same ids the Data step previews; the
subclasses below only skip TRL's own tokenization for such datasets.

With LoRA the reference model is the base with the adapter disabled (TRL's PEFT path: no
second copy in memory); starting from a previous run's adapter, TRL keeps a frozen copy of
that adapter as the reference (the SFT model, as DPO wants). Reference log-probs are
precomputed once when the run sees its samples more than once.
"""

from __future__ import annotations

from typing import Any

from sage_ft_tui.engine.config.schema import RunConfig

# ORPO and SimPO compare the answers without a reference model.
REFERENCE_FREE = ("orpo", "simpo")


def _pretokenized(dataset) -> bool:
    return dataset is not None and "prompt_ids" in getattr(dataset, "column_names", ())


def _keep_fitting(dataset, max_length):
    # A prompt that fills max_length leaves no answer token to score (TRL drops them too).
    if not max_length:
        return dataset
    return dataset.filter(lambda ids: len(ids) < max_length, input_columns=["prompt_ids"])


def _legacy_row(feature: dict, max_length: int, bos_id, eos_id) -> dict:
    """Our ids in the column layout of TRL's older pair trainers (ORPO, CPO)."""
    prompt = list(feature["prompt_ids"])
    out: dict[str, Any] = {"prompt_input_ids": prompt, "prompt_attention_mask": [1] * len(prompt)}
    for side in ("chosen", "rejected"):
        answer = list(feature[f"{side}_ids"])[: max(0, max_length - len(prompt))]
        ids = prompt + answer
        out[f"{side}_input_ids"] = ids
        out[f"{side}_attention_mask"] = [1] * len(ids)
        out[f"{side}_labels"] = [-100] * len(prompt) + answer
    return out


def resolved_method(cfg: RunConfig, labelled: bool) -> str:
    """preference.method with auto settled by the data: kto for labelled rows, else dpo."""
    m = cfg.preference.method
    return ("kto" if labelled else "dpo") if m == "auto" else m


def precompute_ref(cfg: RunConfig, n_train: int) -> bool:
    """Precompute reference log-probs when the run passes over its samples more than once:
    one forward per sample then replaces one per sample per epoch."""
    p = cfg.preference
    if p.method in REFERENCE_FREE or p.precompute_ref == "off":
        return False
    if p.precompute_ref == "on":
        return True
    t = cfg.training
    if t.max_steps > 0:
        seen = t.max_steps * t.micro_batch_size * t.grad_accumulation
        return seen > n_train
    return t.epochs > 1


def trainer_for(cfg: RunConfig, base_args: dict, trainer_kw: dict):
    """The TRL trainer for cfg.preference.method, set up on our tokenized data; `trainer_kw`
    are the model, datasets, tokenizer, peft config and callbacks."""
    train_ds, eval_ds, tokenizer = (
        trainer_kw["train_dataset"],
        trainer_kw["eval_dataset"],
        trainer_kw["processing_class"],
    )
    p = cfg.preference
    t = cfg.training
    method = resolved_method(cfg, "label" in train_ds.column_names)
    common = dict(base_args, max_length=t.max_length, remove_unused_columns=False)
    if method in REFERENCE_FREE:
        if method == "orpo":
            from trl.experimental.orpo import ORPOConfig as Config
            from trl.experimental.orpo import ORPOTrainer as Base

            args = Config(**common, beta=p.beta)
        else:
            from trl.experimental.cpo import CPOConfig as Config
            from trl.experimental.cpo import CPOTrainer as Base

            args = Config(**common, beta=p.beta, loss_type="simpo", cpo_alpha=0.0, simpo_gamma=p.simpo_gamma)

        class PairTrainer(Base):
            def tokenize_row(self, feature, model=None):
                if "prompt_ids" in feature:
                    return _legacy_row(feature, self.max_length, tokenizer.bos_token_id, tokenizer.eos_token_id)
                return super().tokenize_row(feature, model)

        fitting = {
            k: _keep_fitting(d, t.max_length) if d is not None else None
            for k, d in (("train_dataset", train_ds), ("eval_dataset", eval_ds))
        }
        return PairTrainer(args=args, **(trainer_kw | fitting))
    pre = precompute_ref(cfg, len(train_ds))
    if method == "kto":
        from trl import KTOConfig as Config
        from trl import KTOTrainer as Base

        args = Config(
            **common,
            beta=p.beta,
            desirable_weight=p.desirable_weight,
            undesirable_weight=p.undesirable_weight,
            precompute_ref_log_probs=pre,
            train_sampling_strategy="sequential",  # KTO's KL term pairs neighbours in a fixed order
        )
    else:
        from trl import DPOConfig as Config
        from trl import DPOTrainer as Base

        args = Config(
            **common,
            beta=p.beta,
            loss_type=[p.loss_type],
            label_smoothing=p.label_smoothing,
            precompute_ref_log_probs=pre,
        )

    class Trainer(Base):
        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            if not _pretokenized(dataset):
                return super()._prepare_dataset(dataset, processing_class, args, dataset_name)
            dataset = _keep_fitting(dataset, args.max_length)
            if getattr(self, "calculate_KL", False):
                # As TRL's KTO does: the KL term pairs each prompt with the previous row's answer in its batch.
                def rotate(batch):
                    c = batch["completion_ids"]
                    return {"KL_completion_ids": c[-1:] + c[:-1]}

                dataset = dataset.map(rotate, batched=True, batch_size=args.per_device_train_batch_size)
            return dataset

    return Trainer(args=args, **trainer_kw)
