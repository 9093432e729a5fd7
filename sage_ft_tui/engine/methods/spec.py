"""The two descriptor shapes of the method registry: a task (what the model learns from which
rows, and the trainer that does it) and a preference method (one of the preference task's
trainers). Plain data and callables: importing this module imports nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional

if TYPE_CHECKING:
    from sage_ft_tui.engine.config.schema import RunConfig

# (cfg, args, kw) -> a TRL trainer. `args(ConfigClass)` gives the TrainingArguments every
# trainer shares (engine/train/args.py); `kw` are the model, the datasets, the tokenizer,
# the peft config and the callbacks, which every TRL trainer takes by the same names.
TrainerFactory = Callable[["RunConfig", Callable[[type], dict], dict], Any]


def no_problem(cfg: RunConfig) -> Optional[str]:
    return None


def nothing_to_check(cfg: RunConfig) -> None:
    return None


@dataclass(frozen=True)
class TaskSpec:
    """A task the user picks (the wizard's Task step, `--task`, `RunConfig.task`)."""

    name: str
    title: str  # the Task step's list
    description: str  # one sentence: what it learns
    shape: str  # the row it expects, written for people
    formats: tuple[str, ...]  # the row formats it takes (engine/data/formats.py names)
    example: dict  # one row (`sage-ft-tui examples`)
    trainer: TrainerFactory
    order: int  # place in every list
    # how a row becomes its training record, is measured and previewed: a kind of the data path
    # (engine/data/per_task.py DATA_KINDS: conversation, chat, text, code, preference, grpo)
    records: str = "conversation"
    sequences_per_sample: int = 1  # sequences one sample puts through the model per step (memory, plan)
    images: bool = False  # rows may carry images (for a vision-language model)
    packs: bool = True  # rows may be packed into max_length sequences (only TRL's SFT trainer does)
    # rows are pre-tokenized by the data step into the trainer's columns (not input_ids + completion_mask)
    trainer_rows: bool = False
    section: Optional[str] = None  # the config section only this task reads (preference, grpo)
    wizard_steps: tuple[str, ...] = ()  # wizard steps shown only for this task (tui/flow.py)
    metrics: dict[str, str] = field(default_factory=dict)  # TRL log key -> event field (docs/EVENTS.md)
    # a combination of settings the task cannot train: "keys: what is wrong" (the schema refuses it)
    check_config: Callable[[RunConfig], Optional[str]] = no_problem
    # what run creation checks on this machine before anything is written (SageError refuses)
    preflight: Callable[[RunConfig], None] = nothing_to_check


@dataclass(frozen=True)
class MethodSpec:
    """A preference method (`preference.method`): its trainer and what it needs."""

    name: str
    tag: str  # a few words for the Method step's list
    help: str  # one sentence for the highlighted method
    trainer: TrainerFactory
    order: int
    labelled: bool = False  # trains on rows labelled good/bad (pairs are split in two), not on pairs
    reference_free: bool = False  # no reference model (no reference pass, nothing to precompute)
    settings: tuple[str, ...] = ("beta",)  # the preference.* keys it reads (the Method step shows them)
