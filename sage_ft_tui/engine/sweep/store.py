"""A sweep on disk: its spec (sweep.json) and its Optuna study (a journal file beside it).

The journal is Optuna's JournalFileBackend: appended line by line under a file lock, so a
driver killed at any moment (a reboot) leaves a study the next driver opens and continues."""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.fsutil import atomic_write_json, read_json
from sage_ft_tui.engine.runs.layout import RunLayout
from sage_ft_tui.engine.sweep.layout import SweepLayout, sweeps_home
from sage_ft_tui.engine.sweep.params import Param
from sage_ft_tui.engine.sweep.prune import PRUNE_AFTER

SPEC_VERSION = 1


@dataclass
class SweepSpec:
    name: str
    base: dict  # the full base config (RunConfig dump) every trial starts from
    params: list[Param]
    trials: int
    parallel: int = 1  # trials in the queue at once (the queue decides where each runs)
    seed: int = 0  # the TPE sampler's seed
    prune: bool = True
    prune_after: int = PRUNE_AFTER
    source: str = ""  # the config file it was made from (said, never re-read)
    created: float = field(default_factory=time.time)

    def base_config(self) -> RunConfig:
        return RunConfig.from_dict(self.base, source=f"sweep {self.name}")

    def search_key(self) -> str:
        """What makes two sweeps the same search (re-running the same command continues it)."""
        blob = json.dumps(
            {
                "base": {k: v for k, v in self.base.items() if k != "name"},
                "params": [p.to_dict() for p in self.params],
                "seed": self.seed,
            },
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:8]

    def to_dict(self) -> dict:
        return {
            "version": SPEC_VERSION,
            "name": self.name,
            "base": self.base,
            "params": [p.to_dict() for p in self.params],
            "trials": self.trials,
            "parallel": self.parallel,
            "seed": self.seed,
            "prune": self.prune,
            "prune_after": self.prune_after,
            "source": self.source,
            "created": self.created,
        }

    @classmethod
    def from_dict(cls, d: dict) -> SweepSpec:
        return cls(
            name=str(d["name"]),
            base=dict(d["base"]),
            params=[Param.from_dict(p) for p in d["params"]],
            trials=int(d["trials"]),
            parallel=int(d.get("parallel", 1)),
            seed=int(d.get("seed", 0)),
            prune=bool(d.get("prune", True)),
            prune_after=int(d.get("prune_after", PRUNE_AFTER)),
            source=str(d.get("source", "")),
            created=float(d.get("created", 0.0)),
        )


def sweep_dir(name: str, home: Optional[Path] = None) -> SweepLayout:
    return SweepLayout(sweeps_home(home) / name)


def find_sweep(ref: str, home: Optional[Path] = None) -> SweepLayout:
    """A sweep by name (or its folder); one line naming the sweeps there when it is not one."""
    p = Path(ref).expanduser()
    lay = SweepLayout(p) if p.is_dir() and SweepLayout(p).is_ours() else sweep_dir(ref, home)
    if not lay.is_ours():
        names = [s.name for s in list_sweeps(home)]
        known = f"sweeps here: {', '.join(names)}" if names else "there are no sweeps yet"
        raise SageError(
            f"no sweep named {ref!r} in {sweeps_home(home)} ({known})",
            hint="start one: sage-ft-tui sweep CONFIG --param KEY=DIST:ARGS --trials N",
        )
    return lay


def sweep_of(ref: Optional[str], home: Optional[Path] = None) -> SweepLayout:
    """The sweep a screen opens: a trial's run folder (its sweep tag), a sweep's name or folder,
    or None for the newest sweep."""
    if ref is None:
        found = list_sweeps(home)
        if not found:
            raise SageError(
                "there are no sweeps yet", hint="start one: sage-ft-tui sweep CONFIG --param KEY=DIST:ARGS --trials N"
            )
        return found[0]
    tag = read_json(RunLayout(ref).sweep_tag) if Path(ref).is_dir() else None
    if isinstance(tag, dict) and isinstance(tag.get("sweep"), str):
        return find_sweep(tag["sweep"], Path(ref).parent)
    return find_sweep(ref, home)


def list_sweeps(home: Optional[Path] = None) -> list[SweepLayout]:
    root = sweeps_home(home)
    if not root.is_dir():
        return []
    found = [SweepLayout(p) for p in root.iterdir() if p.is_dir() and SweepLayout(p).is_ours()]
    return sorted(found, key=lambda s: _mtime(s.spec), reverse=True)


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0


def save_spec(lay: SweepLayout, spec: SweepSpec) -> None:
    lay.root.mkdir(parents=True, exist_ok=True)
    if not lay.marker.exists():
        atomic_write_json(lay.marker, {"tool": "sage-ft-tui", "kind": "sweep", "created": spec.created})
    atomic_write_json(lay.spec, spec.to_dict())


def load_spec(lay: SweepLayout) -> SweepSpec:
    raw = read_json(lay.spec)
    try:
        return SweepSpec.from_dict(raw)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise SageError(
            f"{lay.spec}: not a readable sweep spec", hint="start the sweep again under another --name"
        ) from None


def require_optuna() -> None:
    """One line, not an ImportError, when the sweep extra is not installed."""
    if importlib.util.find_spec("optuna") is None:
        raise SageError(
            "sweep needs Optuna, which is not installed",
            hint="pip install 'sage-ft-tui[sweep]' (or: pip install optuna)",
        )


def open_study(lay: SweepLayout, spec: SweepSpec) -> Any:
    """The sweep's Optuna study (created on first use): TPE, median pruning on the objective."""
    require_optuna()
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(lay.study)))
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=spec.prune_after, n_warmup_steps=0)
        if spec.prune
        else optuna.pruners.NopPruner()
    )
    study = optuna.create_study(
        study_name=spec.name, storage=storage, load_if_exists=True, direction="minimize", pruner=pruner
    )
    # A driver that continues a sweep must not draw the first trials' values again: the
    # sampler's seed moves on with the trials already asked (deterministic for one history).
    study.sampler = optuna.samplers.TPESampler(seed=spec.seed + len(study.get_trials(deepcopy=False)))
    return study


def driver_pid(lay: SweepLayout) -> Optional[int]:
    """The live driver's pid, None when no driver holds the sweep's lock."""
    if not lay.lock.exists():
        return None
    fd = os.open(lay.lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = (read_json(lay.driver) or {}).get("pid")
        return int(pid) if isinstance(pid, int) else -1
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


__all__ = [
    "require_optuna",
    "SweepSpec",
    "sweep_dir",
    "find_sweep",
    "list_sweeps",
    "save_spec",
    "load_spec",
    "open_study",
    "driver_pid",
]
