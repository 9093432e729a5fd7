"""A sweep's folder, named once: $SAGE_FT_HOME/sweeps/NAME/ and every file in it.

The trials themselves are normal run folders in the runs home (named NAME-tNNN), each
tagged with `RunLayout.sweep_tag`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from sage_ft_tui.engine.paths import runs_home

SWEEPS_DIR = "sweeps"  # under the runs home
SWEEP_MARKER = ".sage-ft-sweep"


def sweeps_home(home: Optional[Path] = None) -> Path:
    return (Path(home) if home else runs_home()) / SWEEPS_DIR


def trial_run_name(sweep: str, number: int) -> str:
    return f"{sweep}-t{number:03d}"


@dataclass(frozen=True)
class SweepLayout:
    root: Path

    def __init__(self, root: str | os.PathLike) -> None:
        object.__setattr__(self, "root", Path(root))

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def runs_home(self) -> Path:
        """The runs home the trials live in (the sweep folder is inside it)."""
        return self.root.parent.parent

    @property
    def marker(self) -> Path:
        return self.root / SWEEP_MARKER

    @property
    def spec(self) -> Path:
        """What the sweep searches: base config, params, trials, sampler and pruner settings."""
        return self.root / "sweep.json"

    @property
    def study(self) -> Path:
        """Optuna's journal (JournalFileBackend): the study, appended to, survives a kill."""
        return self.root / "study.journal"

    @property
    def trials(self) -> Path:
        """The driver's summary of every trial (read by `sweep NAME` and the TUI, no optuna)."""
        return self.root / "trials.json"

    @property
    def driver(self) -> Path:
        """The driver's pid, host, start and end, and why it ended."""
        return self.root / "driver.json"

    @property
    def driver_log(self) -> Path:
        return self.root / "driver.log"

    @property
    def lock(self) -> Path:
        """Held (flock) by the live driver: two drivers never run one sweep."""
        return self.root / ".driver.lock"

    @property
    def best_config(self) -> Path:
        """`sweep NAME --best`: the best trial's config as a full run."""
        return self.root / "best.yaml"

    def is_ours(self) -> bool:
        return self.marker.is_file()


__all__ = ["SweepLayout", "sweeps_home", "trial_run_name", "SWEEPS_DIR"]
