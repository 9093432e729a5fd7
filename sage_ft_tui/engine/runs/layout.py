"""The run folder, named once: every file and sub-folder of a run, its marker, its states.

Every reader and writer of a run folder (worker, trainer, data, merge, serve, eval,
export, TUI, CLI) takes its paths from `RunLayout`; no run-folder file name is written as
a string literal anywhere else. docs/ARCHITECTURE.md lists who writes each file and when.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# The marker written when the tool creates a run folder: a folder without it is not ours,
# and no command deletes or replaces anything in it.
MARKER = ".sage-ft-run"
# Inside a checkpoint-N folder once it is written whole (a half-written one lacks it).
CHECKPOINT_COMPLETE = "sage_complete.json"
# Inside a merged-model folder that merge wrote (so --force only ever replaces our own).
MERGED_MARK = "sage_merged.json"
MERGE_REPORT = "merge_report.json"
CHECKPOINT_PREFIX = "checkpoint-"

# States in status.json / `status` events.
CREATED = "created"
ACTIVE_STATES = ("preparing", "running", "cancelling")
FINAL_STATES = ("completed", "failed", "cancelled")
STATES = (CREATED, *ACTIVE_STATES, *FINAL_STATES)


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run folder (nothing is touched on disk by building one)."""

    root: Path

    def __init__(self, root: str | os.PathLike) -> None:
        object.__setattr__(self, "root", Path(root))

    # -- files at the top ------------------------------------------------------------
    @property
    def marker(self) -> Path:
        return self.root / MARKER

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def status(self) -> Path:
        return self.root / "status.json"

    @property
    def events(self) -> Path:
        return self.root / "events.jsonl"

    @property
    def train_log(self) -> Path:
        return self.root / "train.log"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    @property
    def save_trigger(self) -> Path:
        return self.root / ".save_now"

    @property
    def sweep_tag(self) -> Path:
        """A sweep's trial: which sweep and trial number made this run (engine.sweep)."""
        return self.root / "sweep_trial.json"

    @property
    def slurm_script(self) -> Path:
        """`run RUN --slurm NODES` writes the sbatch script here (never submits it)."""
        return self.root / "slurm.sbatch"

    @property
    def serve_info(self) -> Path:
        return self.root / "serve.json"

    @property
    def serve_log(self) -> Path:
        return self.root / "serve.log"

    @property
    def merge_report(self) -> Path:
        return self.root / MERGE_REPORT

    # -- data ------------------------------------------------------------------------
    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def data_report(self) -> Path:
        return self.data / "data_report.json"

    @property
    def train_data(self) -> Path:
        return self.data / "train.jsonl"

    @property
    def eval_data(self) -> Path:
        return self.data / "eval.jsonl"

    @property
    def tokenized(self) -> Path:
        return self.data / "tokenized"

    @property
    def data_ready(self) -> Path:
        """Written by rank 0 once the tokenized cache is ready (the other ranks wait on it)."""
        return self.data / ".tokenized_ready"

    # -- outputs ---------------------------------------------------------------------
    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def checkpoint(self, step: int) -> Path:
        return checkpoint_dir(self.checkpoints, step)

    @property
    def adapter(self) -> Path:
        return self.root / "adapter"

    @property
    def merged(self) -> Path:
        return self.root / "merged"

    @property
    def eval_dir(self) -> Path:
        return self.root / "eval"

    @property
    def eval_report(self) -> Path:
        """Written by `eval` (engine.eval.report): base vs tuned losses, scores, samples."""
        return self.eval_dir / "report.json"

    @property
    def export_dir(self) -> Path:
        return self.root / "export"

    @property
    def export_report(self) -> Path:
        """Written by `export` (engine.export.run): what it wrote (only those files may be replaced) and the checks."""
        return self.export_dir / "export_report.json"

    def export_gguf(self, quant: str) -> Path:
        """The GGUF export of one quant type (e.g. q8_0), named after the run for llama.cpp / Ollama."""
        return self.export_dir / f"{self.root.name}-{quant}.gguf"

    @property
    def export_hf(self) -> Path:
        return self.export_dir / "hf"

    @property
    def modelfile(self) -> Path:
        """The Ollama Modelfile beside the GGUF export."""
        return self.export_dir / "Modelfile"

    # -- questions -------------------------------------------------------------------
    def is_ours(self) -> bool:
        """True when the tool created this folder (it carries the marker)."""
        return self.marker.is_file()

    def looks_like_run(self) -> bool:
        """A run folder, possibly one made before the marker existed (config or status)."""
        return self.root.is_dir() and (self.marker.is_file() or self.config.is_file() or self.status.is_file())


def layout(run: str | os.PathLike) -> RunLayout:
    return RunLayout(run)


# -- inside folders that are not always the run's own (TRL's checkpoint-N, merge --output) --
def checkpoint_dir(checkpoints: str | os.PathLike, step: int) -> Path:
    """checkpoint-N in a checkpoints folder (the run's own, or the trainer's output_dir)."""
    return Path(checkpoints) / f"{CHECKPOINT_PREFIX}{step}"


def checkpoint_complete(checkpoint: str | os.PathLike) -> Path:
    """The file a checkpoint-N folder carries once it is written whole."""
    return Path(checkpoint) / CHECKPOINT_COMPLETE


def merged_mark(folder: str | os.PathLike) -> Path:
    """The mark of a merged-model folder merge wrote (the run's merged/ or any --output)."""
    return Path(folder) / MERGED_MARK


def merged_report(folder: str | os.PathLike) -> Path:
    """The merge report kept inside a merged-model folder (the run's own is RunLayout.merge_report)."""
    return Path(folder) / MERGE_REPORT


__all__ = [
    "RunLayout",
    "layout",
    "checkpoint_dir",
    "checkpoint_complete",
    "merged_mark",
    "merged_report",
    "MARKER",
    "CHECKPOINT_COMPLETE",
    "MERGED_MARK",
    "MERGE_REPORT",
    "CHECKPOINT_PREFIX",
    "CREATED",
    "ACTIVE_STATES",
    "FINAL_STATES",
    "STATES",
]
