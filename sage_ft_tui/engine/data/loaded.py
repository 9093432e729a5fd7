"""A task's data once read and checked: its records with file:line, its bad rows, its
findings and counts (what load.load_training_data and the code task's scan both give)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Hashable, Optional, Sequence

from sage_ft_tui.engine.data.findings import Finding
from sage_ft_tui.engine.data.rows import BadRow


@dataclass
class LoadedData:
    records: list[dict]
    format: str
    files: list[str]
    bad: list[BadRow] = field(default_factory=list)
    total_rows: int = 0
    wheres: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    # each record's group, which the split keeps on one side: a duplicate's first copy, a code piece's file
    groups: Optional[Sequence[Hashable]] = None
    duplicates: int = 0
    formats: dict[str, str] = field(default_factory=dict)  # file → its detected format
    per_file: dict[str, dict] = field(default_factory=dict)  # file → {format, rows, bad, usable}
    over_max_samples: int = 0  # usable rows left out by data.max_samples

    def keep(self, indices: list[int]) -> None:
        """Keep only these records (their wheres and duplicate groups with them)."""
        self.records = [self.records[i] for i in indices]
        self.wheres = [self.wheres[i] for i in indices]
        if self.groups is not None:
            self.groups = [self.groups[i] for i in indices]
