"""What the monitor knows about a run, folded from its events; memory stays bounded.

Curves keep the whole run at falling resolution (`Decimated`: when full, every other
point goes and the stride doubles); hardware history and checkpoints are fixed-size
deques. A 1,000,000-event run costs the same memory as a 10,000-event one.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Optional

from sage_ft_tui.engine.runs.layout import FINAL_STATES

HW_HISTORY = 120  # hardware samples kept per series (sparklines)
# Extra per-log metrics (preference / GRPO trainers) charted when present: key -> label.
EXTRA_METRICS = {
    "rewards_chosen": "reward chosen",
    "rewards_rejected": "reward rejected",
    "rewards_margin": "reward margin",
    "rewards_accuracy": "reward acc",
    "kl": "KL",
    "reward": "reward",
}


class Decimated:
    """An (x, y) series of at most `cap` points covering everything appended."""

    __slots__ = ("cap", "points", "stride", "_n")

    def __init__(self, cap: int = 1024):
        self.cap = cap
        self.points: list[tuple[float, float]] = []
        self.stride = 1
        self._n = 0

    def append(self, x: float, y: float) -> None:
        self._n += 1
        if (self._n - 1) % self.stride:
            return
        self.points.append((x, y))
        if len(self.points) > self.cap:
            self.points = self.points[::2]
            self.stride *= 2

    def __len__(self) -> int:
        return len(self.points)

    @property
    def last(self) -> Optional[tuple[float, float]]:
        return self.points[-1] if self.points else None


@dataclass
class GpuHistory:
    index: int
    name: str = ""
    util: deque = field(default_factory=lambda: deque(maxlen=HW_HISTORY))
    mem: deque = field(default_factory=lambda: deque(maxlen=HW_HISTORY))
    last: dict = field(default_factory=dict)


class RunModel:
    def __init__(self, name: str = "", curve_cap: int = 1024):
        self.name = name
        self.train = Decimated(curve_cap)
        self.eval = Decimated(curve_cap // 4)
        self.lr = Decimated(curve_cap // 4)
        self.tps = deque(maxlen=HW_HISTORY)
        self.gpus: dict[int, GpuHistory] = {}
        self.cpu = deque(maxlen=HW_HISTORY)
        self.ram = deque(maxlen=HW_HISTORY)
        self.host: dict = {}
        self.start: dict = {}
        self.last_log: dict = {}
        self.last_eval: Optional[float] = None
        self.best_eval: Optional[float] = None
        self.checkpoints: deque = deque(maxlen=20)
        self.state = "unknown"
        self.error: Optional[dict] = None
        self.guard: Optional[dict] = None  # the last guardrail event (NaN stop, spike rollback, early stop)
        self.t_first: Optional[float] = None
        self.t_last: Optional[float] = None
        self.t_end: Optional[float] = None
        self.segments: list[list[Optional[float]]] = []  # [begin, end] per worker life (resumes)
        self.final_step: Optional[int] = None  # the step a final status event reports
        # the step the worker last said it is at, in the order it wrote it: a log, a checkpoint
        # (saved on cancel after the last log), a resume's start, the final status
        self.step_now = 0
        self.tokens_before = 0  # tokens of earlier worker lives (the counter restarts on resume)
        self._tokens_seen = 0
        self.extra: dict[str, deque] = {}  # EXTRA_METRICS (and reward_<name>) history
        self.events = 0
        self.version = 0  # bumped on every change; the screen redraws when it moved
        self.curve_version = 0  # bumped when the loss curves changed
        self.hw_version = 0  # bumped on each hardware reading

    # ---- folding -------------------------------------------------------------------
    def feed(self, events: list[dict]) -> None:
        for ev in events:
            self._one(ev)
        if events:
            self.version += 1

    def _one(self, ev: dict) -> None:
        self.events += 1
        t = ev.get("t")
        kind = ev.get("kind")
        if isinstance(t, (int, float)):
            if self.t_first is None:
                self.t_first = t
            self.t_last = t
            if kind != "hw" and (not self.segments or self.segments[-1][1] is not None):
                self.segments.append([t, None])  # a (re)started worker: a new stretch of time
        fold = self._FOLD.get(kind) if isinstance(kind, str) else None
        if fold is not None:
            fold(self, ev)
        # unknown kinds: ignored (schema rule)

    def _on_log(self, ev: dict) -> None:
        self._tokens(ev.get("tokens"))
        self._extra(ev)
        self.last_log = ev
        step = ev.get("step")
        if isinstance(step, (int, float)):
            self.step_now = int(step)
            loss, lr = ev.get("loss"), ev.get("learning_rate")
            if isinstance(loss, (int, float)):
                self.train.append(step, loss)
                self.curve_version += 1
            if isinstance(lr, (int, float)):
                self.lr.append(step, lr)
        tps = ev.get("tokens_per_s")
        if isinstance(tps, (int, float)):
            self.tps.append(tps)
        if self.state in ("unknown", "preparing", "created"):
            self.state = "running"
        if self.error is not None and self.error.get("recovering"):
            self.error = None  # an OOM retry that worked: training goes on

    def _on_eval(self, ev: dict) -> None:
        step, loss = ev.get("step"), ev.get("eval_loss")
        if isinstance(step, (int, float)) and isinstance(loss, (int, float)):
            self.eval.append(step, loss)
            self.curve_version += 1
            self.last_eval = loss
            self.best_eval = loss if self.best_eval is None else min(self.best_eval, loss)

    def _on_start(self, ev: dict) -> None:
        self.start = ev
        self.t_end = None
        resumed = ev.get("resumed_from_step")
        if isinstance(resumed, (int, float)):
            self.step_now = int(resumed)  # a resume (or a rollback) goes on from its checkpoint

    def _on_status(self, ev: dict) -> None:
        state = ev.get("state")
        if not isinstance(state, str):
            return
        self.state = state
        if state in FINAL_STATES:
            t = ev.get("t")
            self.t_end = t if isinstance(t, (int, float)) else self.t_end
            if self.segments and self.segments[-1][1] is None:
                self.segments[-1][1] = self.t_end if self.t_end is not None else self.t_last
            step = ev.get("step")
            self.final_step = int(step) if isinstance(step, (int, float)) else self.final_step
            self.step_now = max(self.step_now, self.final_step or 0)
        elif state == "preparing":  # a new worker life: no final step, no old error
            self.final_step = None
            self.error = None

    def _on_checkpoint(self, ev: dict) -> None:
        self.checkpoints.append(ev)
        step = ev.get("step")
        if isinstance(step, (int, float)):
            self.step_now = max(self.step_now, int(step))

    def _on_error(self, ev: dict) -> None:
        self.error = ev

    def _on_guard(self, ev: dict) -> None:
        self.guard = ev

    _FOLD = {
        "log": _on_log,
        "eval": _on_eval,
        "hw": lambda self, ev: self.feed_hw(ev),
        "start": _on_start,
        "status": _on_status,
        "checkpoint": _on_checkpoint,
        "error": _on_error,
        "guard": _on_guard,
    }

    def _tokens(self, tokens: Any) -> None:
        if not isinstance(tokens, (int, float)):
            return
        if tokens < self._tokens_seen:  # a resumed worker counts from its own start again
            self.tokens_before += self._tokens_seen
        self._tokens_seen = int(tokens)

    def _extra(self, ev: dict) -> None:
        for key, value in ev.items():
            if (key in EXTRA_METRICS or key.startswith("reward_")) and isinstance(value, (int, float)):
                self.extra.setdefault(key, deque(maxlen=HW_HISTORY)).append(float(value))

    def feed_hw(self, ev: dict) -> None:
        for g in ev.get("gpus") or []:
            if not isinstance(g, dict):
                continue
            idx = int(g.get("index") or 0)
            hist = self.gpus.get(idx)
            if hist is None:
                hist = self.gpus[idx] = GpuHistory(idx)
            hist.name = str(g.get("name") or hist.name)
            hist.last = g
            util = g.get("util")
            hist.util.append(float(util) if isinstance(util, (int, float)) else 0.0)
            used, total = g.get("mem_used"), g.get("mem_total")
            if isinstance(used, (int, float)) and total:
                hist.mem.append(100.0 * used / total)
        cpu = ev.get("cpu_percent")
        if isinstance(cpu, (int, float)):
            self.cpu.append(float(cpu))
        used, total = ev.get("ram_used"), ev.get("ram_total")
        if isinstance(used, (int, float)) and total:
            self.ram.append(100.0 * used / total)
        self.host = ev
        self.hw_version += 1
        self.version += 1

    # ---- derived figures ---------------------------------------------------------
    @property
    def step(self) -> int:
        """Where the run is, as the worker last said (not only its last log: logs come every
        logging_steps, while a checkpoint, a resume or the end can come between them)."""
        return self.step_now

    @property
    def tokens(self) -> Optional[int]:
        """Tokens trained, summed over every worker life of the run (resumes included)."""
        if not self._tokens_seen and not self.tokens_before:
            return None
        return self.tokens_before + self._tokens_seen

    @property
    def total_steps(self) -> int:
        return int(self.start.get("total_steps") or self.last_log.get("total_steps") or 0)

    @property
    def epoch(self) -> Optional[float]:
        """The epoch at `step`, from the worker's own epoch/step ratio (its logs carry Trainer's
        state.epoch = step / steps per epoch): the header never lags the log by a logging interval."""
        epoch, logged = self.last_log.get("epoch"), self.last_log.get("step")
        if not isinstance(epoch, (int, float)):
            return None
        if isinstance(logged, (int, float)) and logged > 0 and self.step:
            return round(epoch * self.step / logged, 4)
        return epoch

    @property
    def loss(self) -> Optional[float]:
        return self.last_log.get("loss")

    def elapsed(self, now: float) -> Optional[float]:
        """Time the run has worked: preparing and training, summed over resumes."""
        if not self.segments:
            return None
        total = 0.0
        for begin, end in self.segments:
            stop = end if end is not None else (now if self.state not in FINAL_STATES else self.t_last)
            total += max(0.0, (stop if stop is not None else now) - (begin or 0.0))
        return total

    @property
    def eta(self) -> Optional[float]:
        if self.state in FINAL_STATES:
            return None
        return self.last_log.get("eta_s")

    def eta_at(self, now: float) -> Optional[float]:
        """The last logged ETA, counted down by the time since that log."""
        eta, t = self.eta, self.last_log.get("t")
        if not isinstance(eta, (int, float)):
            return None
        if isinstance(t, (int, float)):
            eta -= max(0.0, now - t)
        return max(0.0, eta)

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES


GUARD_LABELS = {"nonfinite": "NaN/inf loss", "spike": "loss spike", "early_stop": "early stop"}


def guard_banner(ev: Optional[dict]) -> Optional[dict]:
    """A guard event as the Monitor's banner line (None: nothing to show)."""
    if not ev or not ev.get("message"):
        return None
    rule = str(ev.get("rule") or "guard")
    return {
        "error_kind": GUARD_LABELS.get(rule, rule),
        "message": ev["message"],
        "hint": ev.get("hint", ""),
        "recovering": ev.get("action") == "rollback",
        "guard": True,
    }


def fmt_num(v: Any, spec: str = ".4f") -> str:
    return format(v, spec) if isinstance(v, (int, float)) else "—"


def fmt_rate(v: Any) -> str:
    if not isinstance(v, (int, float)):
        return "—"
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    if v >= 1e3:
        return f"{v / 1e3:.1f}k"
    return f"{v:.0f}"
