"""The sample data shipped inside the package (sage_ft_tui/samples/), and which task each
fits: its rows' format (formats.detect_format) among the formats the task accepts
(tasks.TASKS). The wizard's Data step offers them ("Use a sample"); the demo uses one.
Torch-free; reads the small bundled files only."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from sage_ft_tui.engine.data.formats import detect_format
from sage_ft_tui.engine.data.readers import is_data_name, read_files
from sage_ft_tui.engine.methods.registry import all_tasks


@dataclass(frozen=True)
class Sample:
    name: str  # file name inside the samples folder
    path: Path
    format: str
    rows: int


def samples_dir() -> Path:
    return Path(str(resources.files("sage_ft_tui") / "samples"))


def sample_path(name: str) -> Path:
    return samples_dir() / name


@lru_cache(maxsize=1)
def bundled_samples() -> tuple[Sample, ...]:
    """Every sample file (pretrain/, the tiny model's own pre-training text, left out)."""
    out = []
    for f in sorted(samples_dir().iterdir()):
        if not f.is_file() or not is_data_name(f.name):
            continue
        read = read_files([str(f)])
        fmt, _counts = detect_format(read.rows)
        if fmt:
            out.append(Sample(f.name, f, fmt, len(read.rows)))
    return tuple(out)


def samples_for(task: str) -> list[Sample]:
    """The bundled samples whose format the task accepts."""
    accepted = all_tasks()[task].formats if task in all_tasks() and task != "code" else ()
    fits = [s for s in bundled_samples() if s.format in accepted]
    return sorted(fits, key=lambda s: not s.name.startswith(task))  # the task's own sample first
