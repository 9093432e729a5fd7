"""TRL's preference trainers on our tokenized rows (engine/data/preference.py: prompt_ids +
chosen_ids / rejected_ids, or completion_ids + label, the same ids the Data step previews).
The subclasses only skip TRL's own tokenization for such datasets. ORPO and CPO (SimPO is
CPO's simpo loss) are TRL's older pair trainers, in trl.experimental."""

from __future__ import annotations

import os
from typing import Any

from trl import DPOTrainer, KTOTrainer

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # ORPO and CPO live there, knowingly
from trl.experimental.cpo import CPOTrainer  # noqa: E402
from trl.experimental.orpo import ORPOTrainer  # noqa: E402


def pretokenized(dataset) -> bool:
    return dataset is not None and "prompt_ids" in getattr(dataset, "column_names", ())


def keep_fitting(dataset, max_length):
    """Rows whose prompt leaves room for an answer token: a prompt that fills max_length
    leaves nothing to score (TRL drops them too)."""
    if dataset is None or not max_length:
        return dataset
    return dataset.filter(lambda ids: len(ids) < max_length, input_columns=["prompt_ids"])


def fitting_kw(kw: dict, max_length: int) -> dict:
    """The trainer's keyword arguments with both datasets cut to the rows that fit."""
    return kw | {k: keep_fitting(kw[k], max_length) for k in ("train_dataset", "eval_dataset")}


def legacy_row(feature: dict, max_length: int) -> dict:
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


class PretokenizedRows:
    """DPO and KTO: our tokenized rows go in as they are (cut to the rows that fit)."""

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        if not pretokenized(dataset):
            return super()._prepare_dataset(dataset, processing_class, args, dataset_name)  # type: ignore[misc]
        dataset = keep_fitting(dataset, args.max_length)
        if getattr(self, "calculate_KL", False):
            # As TRL's KTO does: the KL term pairs each prompt with the previous row's answer in its batch.
            def rotate(batch):
                c = batch["completion_ids"]
                return {"KL_completion_ids": c[-1:] + c[:-1]}

            dataset = dataset.map(rotate, batched=True, batch_size=args.per_device_train_batch_size)
        return dataset


class LegacyPairRows:
    """ORPO and CPO: our tokenized pairs in their older column layout."""

    max_length: int

    def tokenize_row(self, feature, model=None):
        if "prompt_ids" in feature:
            return legacy_row(feature, self.max_length)
        return super().tokenize_row(feature, model)  # type: ignore[misc]


class DPOPairs(PretokenizedRows, DPOTrainer):
    pass


class KTORows(PretokenizedRows, KTOTrainer):
    pass


class ORPOPairs(LegacyPairRows, ORPOTrainer):
    pass


class CPOPairs(LegacyPairRows, CPOTrainer):
    pass
