"""How data is read and checked: the options of `load.load_training_data`, in one object
(the run's config gives them with `LoadOptions.for_run`; the legacy API passes keywords)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional


@dataclass(frozen=True)
class LoadOptions:
    task: str = "instruction"
    fmt: str = "auto"  # a formats.FORMATS name, or auto: detected per file
    field_map: Optional[dict] = None  # our field → the file's column
    system_prompt: Optional[str] = None
    max_bad_share: float = 0.05  # more bad rows than this share stops the load
    max_samples: Optional[int] = None  # usable rows kept (the rest counted as over_max_samples)
    max_length: Optional[int] = None  # tokens: a conversation far past it is a bad row
    answer_field: str = "answer"  # GRPO's reference answer column
    replace: Optional[dict] = None  # {{placeholder}} → text
    allow_secrets: bool = False
    text_model: str = ""  # the run's model when it reads text only: image rows are refused

    @classmethod
    def for_run(cls, cfg: Any, text_model: str = "", **over: Any) -> LoadOptions:
        """The options a run's config (a RunConfig) gives its training data."""
        d = cfg.data
        return cls(
            task=cfg.task,
            fmt=d.format,
            field_map=d.field_map,
            system_prompt=d.system_prompt,
            max_bad_share=d.max_bad_share,
            max_samples=d.max_samples,
            max_length=cfg.training.max_length,
            answer_field=cfg.grpo.answer_field,
            replace=d.replace,
            allow_secrets=d.allow_secrets,
            text_model=text_model,
            **over,
        )
