"""Time budgets per phase: a slow phase is cut short with a note, later phases still run."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Budget:
    """`total` seconds for the whole check; each phase asks for its share. Time a phase did
    not use carries over to the next, but never the time the phases after it need."""

    total: float
    plan: dict[str, float]  # phase name -> its own share, in order
    t0: float = field(default_factory=time.monotonic)
    spent: dict[str, float] = field(default_factory=dict)

    def remaining(self) -> float:
        return self.total - (time.monotonic() - self.t0)

    def allow(self, phase: str) -> float:
        """Seconds `phase` may take from now."""
        names = list(self.plan)
        later = sum(self.plan[n] for n in names[names.index(phase) + 1 :] if n not in self.spent)
        earlier = sum(self.plan[n] for n in names[: names.index(phase)])
        slack = max(0.0, earlier - sum(self.spent.values()))
        return max(0.0, min(self.plan[phase] + slack, self.remaining() - later))

    def done(self, phase: str, seconds: float) -> None:
        self.spent[phase] = seconds
