"""TRL's SFTTrainer on our input_ids + completion_mask rows (or a VLM's image rows)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from trl import SFTConfig, SFTTrainer

from sage_ft_tui.engine.train.model import use_liger

if TYPE_CHECKING:
    from sage_ft_tui.engine.config.schema import RunConfig


def sft_trainer(cfg: RunConfig, args: Callable[[type], dict], kw: dict):
    """Image rows (`images` column): TRL neither packs nor pads them free; its collator keeps
    the dataset's prompt/completion/images columns and processes each batch."""
    vision = "images" in (kw["train_dataset"].column_names or [])
    t = cfg.training
    config = SFTConfig(
        **args(SFTConfig),
        max_length=t.max_length,
        packing=t.packing and not vision,
        packing_strategy="bfd",
        completion_only_loss=True,
        use_liger_kernel=use_liger() and not vision,
        **({"remove_unused_columns": False} if vision else {}),
    )
    return SFTTrainer(args=config, **kw)
