"""One run folder's state: status.json (typed), the worker's lock, the honest state derived
from both, what a listing shows, its checkpoints, and following its events.

The worker holds an exclusive flock on <run>/.lock for its whole life; that lock, not a
pid in a file, is what tells a live run from a dead one (pids get reused).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Optional

import yaml

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.fsutil import atomic_write_json, flock_held
from sage_ft_tui.engine.paths import HOME_ENV, list_dir, runs_home
from sage_ft_tui.engine.proc import pid_alive
from sage_ft_tui.engine.runs.events import EventFollower, follow_events, read_events
from sage_ft_tui.engine.runs.layout import (
    ACTIVE_STATES,
    CHECKPOINT_PREFIX,
    FINAL_STATES,
    STATES,
    RunLayout,
    checkpoint_complete,
)

# ---- status.json and the lock ---------------------------------------------------------------------


# The type each status.json field must have; a field of another type is dropped on read
# (and the file counts as unreadable), so no reader ever does int("abc") or .get on a list.
_STATUS_TYPES: dict[str, tuple[type, ...]] = {
    "state": (str,),
    "pid": (int,),
    "step": (int,),
    "total_steps": (int,),
    "epoch": (int, float),
    "loss": (int, float),
    "eval_loss": (int, float),
    "created": (int, float),
    "started": (int, float),
    "ended": (int, float),
    "updated": (int, float),
    "launched": (int, float),
    "host": (str,),
    "exit_reason": (str,),
}
UNREADABLE = "status.json unreadable"


def load_status(run: Path) -> tuple[dict, bool]:
    """(status fields that have the right type, whether status.json was sound).

    A missing file is sound (a run being created); garbage, a JSON list, a state we do not
    know or a field of the wrong type (a step "abc") is not."""
    path = RunLayout(run).status
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}, True
    except OSError:
        return {}, False
    try:
        st = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return {}, False
    if not isinstance(st, dict):
        return {}, False
    ok = True
    clean: dict = {}
    for k, v in st.items():
        want = _STATUS_TYPES.get(k)
        if v is None or want is None:
            clean[k] = v
        elif isinstance(v, want) and not isinstance(v, bool) and not (isinstance(v, float) and v != v):
            clean[k] = v
        else:
            ok = False
    if clean.get("state") is not None and clean["state"] not in STATES:
        clean.pop("state")
        ok = False
    return clean, ok


def read_status(run: Path) -> dict:
    return load_status(run)[0]


def write_status(run: Path, **fields) -> dict:
    st = read_status(run)
    st.update(fields)
    st["updated"] = time.time()
    atomic_write_json(RunLayout(run).status, st)
    return st


def lock_held(run: Path) -> bool:
    """True when a live worker holds the run's lock."""

    return flock_held(RunLayout(run).lock)


@contextmanager
def run_lock(run: Path) -> Iterator[None]:
    """Held by the worker for its life; a second worker on the same run is refused."""
    path = RunLayout(run).lock
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        pid = read_status(run).get("pid")
        raise SageError(
            f"run {Path(run).name} is already being trained" + (f" (pid {pid})" if pid else ""),
            hint="attach to it with `sage-ft-tui attach`, or cancel it first",
            kind="config",
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@dataclass
class RunInfo:
    name: str
    path: str
    state: str
    detail: str = ""
    pid: Optional[int] = None
    step: int = 0
    total_steps: int = 0
    epoch: float = 0.0
    last_loss: Optional[float] = None
    eval_loss: Optional[float] = None
    task: str = ""
    model: str = ""
    created: float = 0.0
    started: Optional[float] = None
    ended: Optional[float] = None
    exit_reason: str = ""

    @property
    def label(self) -> str:
        return f"{self.state} ({self.detail})" if self.detail else self.state

    def to_dict(self) -> dict:
        return asdict(self) | {"label": self.label}


def _events_state(run: Path) -> str:
    """The last state the event stream recorded ('' when none)."""

    try:
        evs = read_events(RunLayout(run).events).events
    except OSError:
        return ""
    for ev in reversed(evs):
        if ev.get("kind") == "status" and ev.get("state") in STATES:
            return str(ev["state"])
    return ""


def derive_state(run: Path, status: Optional[dict] = None) -> tuple[str, str]:
    """(state, detail). With status.json unreadable the state comes from the event stream
    and the lock/pid: a live worker is `running`; otherwise `unknown` — never a guess that
    would let `run` retrain a finished run in place."""
    if status is None:
        st, sound = load_status(run)
    else:
        st, sound = status, status.get("_sound", True)
    if not sound:
        if lock_held(run):
            evs = _events_state(run)
            return (evs if evs in ACTIVE_STATES else "running"), UNREADABLE
        return "unknown", UNREADABLE
    state = st.get("state") or ("created" if (RunLayout(run).config).exists() else "unknown")
    if state in ACTIVE_STATES:
        local = st.get("host") in (None, socket.gethostname())
        if local and not lock_held(run) and not pid_alive(st.get("pid")):
            return "failed", "worker died"
    if state == "failed":
        return state, st.get("exit_reason", "")
    return state, ""


def run_info(run: Path) -> RunInfo:
    run = Path(run)
    st, sound = load_status(run)
    state, detail = derive_state(run, {**st, "_sound": sound})
    cfg: dict = {}
    try:
        cfg = yaml.safe_load((RunLayout(run).config).read_text(encoding="utf-8")) or {}
        if not isinstance(cfg, dict):
            cfg = {}
    except Exception:
        pass
    model = cfg.get("model")
    return RunInfo(
        name=run.name,
        path=str(run),
        state=state,
        detail=detail,
        pid=st.get("pid"),
        step=int(st.get("step") or 0),
        total_steps=int(st.get("total_steps") or 0),
        epoch=float(st.get("epoch") or 0),
        last_loss=st.get("loss"),
        eval_loss=st.get("eval_loss"),
        task=str(cfg.get("task", "")),
        model=str(model.get("name", "") if isinstance(model, dict) else ""),
        created=float(st.get("created") or _mtime(run)),
        started=st.get("started"),
        ended=st.get("ended"),
        exit_reason=st.get("exit_reason") or "",
    )


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0


def list_runs(home: Optional[Path] = None) -> list[RunInfo]:
    """Every run we made in the runs home (folders without our marker are not runs); one
    odd run never hides the others."""
    home = Path(home) if home else runs_home()
    infos = []
    for p in list_dir(home, "the runs home", HOME_ENV):
        try:
            if p.is_dir() and RunLayout(p).is_ours():
                infos.append(run_info(p))
        except PermissionError:
            infos.append(RunInfo(name=p.name, path=str(p), state="unknown", detail="permission denied"))
    return sorted(infos, key=lambda r: r.created, reverse=True)


def load_config(run: Path) -> RunConfig:
    return RunConfig.load(RunLayout(run).config)


def training_gpus(cfg: RunConfig) -> set[int]:
    """The GPU indices a run trains on (GPU 0 when it names none)."""
    return set(cfg.training.gpus) if cfg.training.gpus else {0}


def checkpoints(run: Path, complete_only: bool = True) -> list[Path]:
    """checkpoint-N folders sorted by step number (not text); half-written ones left out."""
    out = []
    for p in RunLayout(run).checkpoints.glob(CHECKPOINT_PREFIX + "*"):
        try:
            step = int(p.name.rsplit("-", 1)[1])
        except ValueError:
            continue
        if complete_only and not checkpoint_complete(p).exists():
            continue
        out.append((step, p))
    return [p for _, p in sorted(out)]


def no_adapter_hint(run: Path) -> str:
    """What works for a run without a final adapter, by its state (each hint a command that
    is accepted: `resume` refuses a completed run, `run` one with checkpoints)."""
    run = Path(run)
    state = derive_state(run)[0]
    done = checkpoints(run)
    if state in ACTIVE_STATES:
        return f"let it finish (`sage-ft-tui attach {run.name}`)"
    if state == "created":
        return f"train it first: `sage-ft-tui run {run.name}`"
    if state in ("failed", "cancelled") and done:
        return f"continue it: `sage-ft-tui resume {run.name}`, or use {done[-1]} (a complete checkpoint's adapter)"
    if done:  # completed, the adapter deleted: a checkpoint still holds one
        return (
            f"use its newest checkpoint: `--checkpoint latest` for merge, or `--set model.init_adapter={done[-1]}`; "
            f"or train it again as a new run: `sage-ft-tui run {RunLayout(run).config}`"
        )
    return f"train it again as a new run: `sage-ft-tui run {RunLayout(run).config}`"


def wait_for_end(run: Path, timeout: float = 600.0, poll: float = 0.25) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        state, _ = derive_state(run)
        if state in FINAL_STATES:
            return state
        time.sleep(poll)
    raise TimeoutError(f"run {Path(run).name} did not end within {timeout:.0f}s")


def follow(run: Path, poll_s: float = 0.25, follower: Optional[EventFollower] = None):
    """Replay then tail the run's events until it ends (or its worker dies); lines it could
    not read are in `follower.skipped` when a follower is given."""
    run = Path(run)

    def alive() -> bool:
        return derive_state(run)[0] in ACTIVE_STATES

    return follow_events(RunLayout(run).events, is_alive=alive, poll_s=poll_s, follower=follower)
