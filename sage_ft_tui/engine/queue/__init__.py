"""The run queue: queued runs start one after another (or side by side on free GPUs) through a
small detached scheduler. `state` owns the queue file, `fit` the GPU choice, `scheduler` the
process. No torch, no textual: the TUI calls these directly."""

from sage_ft_tui.engine.queue.scheduler import ensure_scheduler, scheduler_pid, stop_scheduler
from sage_ft_tui.engine.queue.state import ENTRY_STATES, QueueEntry, enqueue, entries, move, remove

__all__ = [
    "QueueEntry",
    "ENTRY_STATES",
    "enqueue",
    "entries",
    "remove",
    "move",
    "ensure_scheduler",
    "stop_scheduler",
    "scheduler_pid",
]
