"""Run folders: create, list, honest state, lock, launch detached, cancel, resume.

The worker holds an exclusive flock on <run>/.lock for its whole life; that lock, not a
pid in a file, is what tells a live run from a dead one (pids get reused).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator, Optional

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.fsutil import atomic_write_json, fmt_bytes
from sage_ft_tui.engine.paths import (
    HOME_ENV,
    check_writable_dir,
    list_dir,
    not_ours,
    permission_error,
    runs_home,
    safe_name,
    validate_run_name,
)
from sage_ft_tui.engine.proc import kill_group, pid_alive, signal_group, spawn_detached
from sage_ft_tui.engine.runs.events import EventFollower, follow_events
from sage_ft_tui.engine.runs.layout import (
    ACTIVE_STATES,
    CHECKPOINT_PREFIX,
    FINAL_STATES,
    STATES,
    RunLayout,
    checkpoint_complete,
)

# ---- status ---------------------------------------------------------------------


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
    from sage_ft_tui.engine.fsutil import flock_held

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
    from sage_ft_tui.engine.runs.events import read_events

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
        import yaml

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


# ---- create ---------------------------------------------------------------------


def default_run_name(cfg: RunConfig) -> str:
    """task-model-timestamp; the model part comes from a folder name the user did not type
    as a run name (`My Model (v2)`), so it is made safe, never refused."""
    model = safe_name(Path(cfg.model.name.rstrip("/")).name)
    return f"{cfg.task}-{model}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def new_run_dir(cfg: RunConfig, home: Optional[Path] = None, *, unique: bool = False) -> Path:
    """Make the folder for a new run; never reuses or overwrites one. A taken explicit
    name is an error, unless `unique` (then, like a default name, it gets a -2, -3...)."""
    home = check_writable_dir(Path(home) if home else runs_home(), "the runs home", HOME_ENV)
    name = validate_run_name(cfg.name or default_run_name(cfg))
    run = home / name
    if run.exists():
        if cfg.name and not unique:
            raise SageError(
                f"a run named {name!r} already exists in {home}",
                hint="choose another --name, or `sage-ft-tui clean` it first",
            )
        for i in range(2, 1000):
            run = home / f"{name}-{i}"
            if not run.exists():
                break
    try:
        run.mkdir(parents=True, exist_ok=False)
    except PermissionError:
        raise permission_error(run.parent, "the runs home", HOME_ENV) from None
    except OSError as e:
        raise SageError(
            f"cannot create the run folder {run}: {e.strerror}",
            hint="check SAGE_FT_HOME and its permissions",
            kind="disk",
        ) from None
    os.chmod(run, 0o750)
    write_marker(run)
    return run


def write_marker(run: Path) -> None:
    """Mark a folder the tool created as ours (see layout.MARKER)."""
    from sage_ft_tui import __version__

    atomic_write_json(RunLayout(run).marker, {"tool": "sage-ft-tui", "version": __version__, "created": time.time()})


def create_run(
    cfg: RunConfig, home: Optional[Path] = None, *, prepare: bool = True, unique: bool = False, here: bool = True
) -> Path:
    """A run folder with config.yaml and, by default, the prepared data. `here=False`: the
    run is planned for another machine (--gpu/--vram/--gpus), whose hardware is checked when
    it is launched there."""
    from sage_ft_tui.engine.offline import apply_offline_env

    apply_offline_env(cfg)  # data preparation loads the tokenizer here: local stays local
    preflight(cfg)
    if here:
        machine_preflight(cfg)
    run = new_run_dir(cfg, home, unique=unique)
    try:
        cfg = cfg.model_copy(update={"name": run.name})
        if prepare:
            from sage_ft_tui.engine.data.prepare import prepare_run_data

            prepare_run_data(cfg, run)
        cfg.save(RunLayout(run).config)
        extra = {"trust_remote_code": True} if cfg.model.trust_remote_code else {}
        write_status(run, state="created", created=time.time(), host=socket.gethostname(), **extra)
    except BaseException:
        # A refused run leaves nothing behind (it was ours, made a moment ago).
        import shutil

        shutil.rmtree(run, ignore_errors=True)
        raise
    return run


def config_warnings(cfg: RunConfig) -> list[str]:
    """What the user must be told before the run trains (printed by `start`/`run`, shown by the
    wizard): code that will run, and settings this run will not read (config.build)."""
    from sage_ft_tui.engine.config.build import ignored_settings

    out = ignored_settings(cfg)
    if cfg.model.trust_remote_code:
        out.append(
            f"warning: model.trust_remote_code is true: the Python code in {cfg.model.name} runs with your "
            "permissions (set it to false unless you trust that folder's code)"
        )
    from sage_ft_tui.engine.models.modules import local_model_dir
    from sage_ft_tui.engine.train.attention import start_note

    mdir = local_model_dir(cfg.model.name, cfg.model.revision)
    note = start_note(cfg.model.attn_implementation, mdir, cfg.model.name) if mdir is not None else None
    return out + ([note] if note else [])


def preflight(cfg: RunConfig) -> None:
    """Refuse settings this machine cannot run, before anything is written."""
    if cfg.model.init_adapter:
        from sage_ft_tui.engine.runs.chain import adapter_dir

        adapter_dir(cfg.model.init_adapter)
    if cfg.task == "grpo":
        from sage_ft_tui.engine.methods.grpo_rewards import check_reward

        for spec in cfg.grpo.rewards:
            check_reward(spec)
    if isinstance(cfg.lora.target_modules, list):
        from sage_ft_tui.engine.models.modules import check_target_modules, local_model_dir

        mdir = local_model_dir(cfg.model.name, cfg.model.revision)
        if mdir is not None:
            check_target_modules(mdir, cfg.lora.target_modules, cfg.model.trust_remote_code, cfg.model.name)


def machine_preflight(cfg: RunConfig, *, planned_elsewhere: bool = False) -> None:
    """Refuse what this machine's hardware cannot run (checked when a run is created for
    this machine, and again when it is launched: a run planned for another machine is
    checked where it trains)."""
    if cfg.model.quantization != "none" or cfg.training.gpus or cfg.training.precision == "fp16":
        from sage_ft_tui.engine.hardware.probe import get_backend

        gpus = get_backend().snapshot().gpus
        if cfg.training.precision == "fp16" and not gpus:
            raise SageError(
                "training.precision fp16 needs an NVIDIA GPU, and this machine has none",
                hint=_ELSEWHERE
                if planned_elsewhere
                else "use --precision auto (or fp32, or bf16) to train here on the CPU, or create the run on the GPU "
                "server",
            )
        if cfg.model.quantization != "none" and not gpus:
            raise SageError(
                f"model.quantization {cfg.model.quantization} needs an NVIDIA GPU, and this machine has none",
                hint=_ELSEWHERE
                if planned_elsewhere
                else "use --set model.quantization=none here, or create the run on the GPU server",
            )
        have = {g.index for g in gpus}
        missing = [g for g in cfg.training.gpus or [] if g not in have]
        if missing:
            raise SageError(
                f"training.gpus: GPU {missing[0]} does not exist here (found: {sorted(have) or 'none'})",
                hint=_ELSEWHERE if planned_elsewhere else "pick GPUs from `sage-ft-tui doctor`",
            )


_ELSEWHERE = (
    "a run planned for another machine (--gpu/--gpus) trains there: copy its folder and `sage-ft-tui run` it; "
    "to train here, start a run without those flags"
)


def load_config(run: Path) -> RunConfig:
    return RunConfig.load(RunLayout(run).config)


# ---- launch / cancel --------------------------------------------------------------


def worker_command(run: Path, cfg: RunConfig, resume: bool = False) -> tuple[list[str], dict]:
    """The worker's command line and extra environment. Several GPUs → accelerate (DDP)."""
    args = ["-m", "sage_ft_tui.engine.worker", str(run)] + (["--resume"] if resume else [])
    env: dict[str, str] = {}
    gpus = cfg.training.gpus
    if gpus and len(gpus) > 1:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in gpus)
        launch = [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--multi_gpu",
            "--num_processes",
            str(len(gpus)),
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
        ]
        return launch + args, env
    if gpus and len(gpus) == 1:
        env["CUDA_VISIBLE_DEVICES"] = str(gpus[0])
    return [sys.executable] + args, env


def check_can_train(run: Path, *, resume: bool = False, force: bool = False) -> None:
    """Refuse to train into a folder that is not ours, or over what a run already holds.

    `run` over a run refuses a completed one and one with checkpoints; `resume` refuses a
    completed one (it would train past its plan and rewrite the adapter); an unknown state
    (status.json unreadable) refuses both unless `force`."""
    run = Path(run)
    verb = "resume it" if resume else "train it"
    if not RunLayout(run).is_ours():
        raise not_ours(run, verb)
    st, _sound = load_status(run)
    if lock_held(run):
        raise SageError(
            f"run {run.name} is already running{_whose(st)}",
            hint=f"attach to it (sage-ft-tui attach {run.name}), or cancel it first",
        )
    state, detail = derive_state(run)
    if state in ACTIVE_STATES:  # launched, its worker not yet holding the lock (still importing)
        raise SageError(
            f"run {run.name} is already {'starting' if state == 'preparing' else state}{_whose(st)}",
            hint=f"attach to it (sage-ft-tui attach {run.name}), or cancel it first",
        )
    if state == "unknown" and not force:
        raise SageError(
            f"run {run.name}: its state is unknown ({detail or 'no status'}), so training could overwrite "
            "a finished run",
            hint=f"look at {RunLayout(run).events} and pass --force to {verb} anyway, "
            f"or train a new run: sage-ft-tui run {RunLayout(run).config}",
        )
    if state == "completed":
        how = (
            f"train more as a new run: `sage-ft-tui run {RunLayout(run).config}` (same config), or continue from "
            f"its adapter: `sage-ft-tui start --from-run {run.name} ...`"
        )
        raise SageError(
            f"run {run.name} has already completed" + (" (resume would train past its plan)" if resume else ""),
            hint=how,
        )
    if not resume and state in ("failed", "cancelled") and checkpoints(run):
        raise SageError(
            f"run {run.name} stopped ({state}) with checkpoints", hint=f"continue it: sage-ft-tui resume {run.name}"
        )


def _whose(st: dict) -> str:
    """ " (worker pid N on HOST, launched 3s ago)" from a status, or ""."""
    parts = []
    if st.get("pid"):
        host = st.get("host")
        parts.append(f"worker pid {st['pid']}" + (f" on {host}" if host and host != socket.gethostname() else ""))
    if st.get("launched"):
        parts.append(f"launched {max(0, time.time() - float(st['launched'])):.0f}s ago")
    return f" ({', '.join(parts)})" if parts else ""


@contextmanager
def _launching(run: Path) -> Iterator[None]:
    """Held by a launcher from its check until status.json names the new worker: a second
    `run`/`resume` of the same run waits here, then finds it starting and is refused (the run
    folder itself is flocked: no new file in the run's layout)."""
    fd = os.open(run, os.O_RDONLY)
    try:
        deadline = time.time() + 30
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.time() > deadline:
                    raise SageError(
                        f"run {run.name} is being launched by another command",
                        hint=f"wait for it, then `sage-ft-tui attach {run.name}`",
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


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


def launch(run: Path, *, resume: bool = False, force: bool = False) -> int:
    """Start the worker detached (own session, output to train.log); returns its pid.
    Check, spawn and the status that names the worker happen under the launch lock, so of two
    launches at once one starts the worker and the other is refused naming it."""
    run = Path(run)
    with _launching(run):
        return _launch(run, resume=resume, force=force)


def _launch(run: Path, *, resume: bool, force: bool) -> int:
    check_can_train(run, resume=resume, force=force)
    cfg = load_config(run)
    from sage_ft_tui.engine.offline import offline_env

    cmd, extra_env = worker_command(run, cfg, resume)
    env = {**os.environ, **offline_env(cfg), **extra_env, "PYTHONUNBUFFERED": "1"}
    proc = spawn_detached(cmd, cwd=run, log=RunLayout(run).train_log, env=env)
    write_status(
        run,
        state="preparing",
        pid=proc.pid,
        host=socket.gethostname(),
        launched=time.time(),
        exit_reason="",
        resume=resume,
    )
    return proc.pid


def _gpu_set(cfg: RunConfig) -> set[int]:
    return set(cfg.training.gpus) if cfg.training.gpus else {0}


def shared_gpu_warning(run: Path, home: Optional[Path] = None) -> str:
    """'' or a warning naming other live runs in the runs folder that train on the same GPU.

    Two runs on one GPU both work while memory lasts; the user should know they share it."""
    run = Path(run).resolve()
    try:
        from sage_ft_tui.engine.hardware.probe import get_backend

        snap = get_backend().snapshot()
        if not snap.has_gpu:
            return ""
        mine = _gpu_set(load_config(run))
        home = Path(home) if home else run.parent
        others = []
        for p in sorted(home.iterdir()):
            if not p.is_dir() or p.resolve() == run or not (RunLayout(p).config).exists():
                continue
            if derive_state(p)[0] not in ACTIVE_STATES:
                continue
            both = mine & _gpu_set(load_config(p))
            if both:
                others.append((p.name, both))
    except (OSError, SageError):
        return ""
    if not others:
        return ""
    gpus = sorted(set().union(*(g for _, g in others)))
    free = ""
    for g in snap.gpus:
        if g.index == gpus[0]:
            free = f"; {fmt_bytes(g.mem_free)} free on GPU {g.index} now"
            break
    names = ", ".join(n for n, _ in others)
    return (
        f"warning: GPU {', '.join(map(str, gpus))} is already training {names}; the runs share its memory "
        f"and compute{free} (set training.gpus to another GPU, or expect slower steps and OOM retries)"
    )


# How long a cancel waits for the worker's own checkpoint-and-stop before killing its group.
CANCEL_WAIT_S = 60.0


def cancel(run: Path, *, wait: float = 0.0) -> bool:
    """SIGTERM the worker's process group: it saves a checkpoint and ends `cancelled`."""
    run = Path(run)
    st = read_status(run)
    state, _ = derive_state(run, st)
    if state not in ACTIVE_STATES:
        raise SageError(f"run {run.name} is not running (state: {state})", hint="nothing to cancel")
    pid = st.get("pid")
    if not pid:
        raise SageError(
            f"run {run.name}: status.json holds no worker pid, so it cannot be cancelled from here",
            hint=f"find the worker with `ps` (python -m sage_ft_tui.engine.worker {run}) and stop it with kill",
        )
    if not signal_group(int(pid), signal.SIGTERM):
        return False
    sent = time.time()
    deadline = sent + wait
    while time.time() < deadline:
        if derive_state(run)[0] not in ACTIVE_STATES:
            return True
        time.sleep(0.2)
    # Still running `wait` s after SIGTERM and writing no checkpoint: stuck (a reward that never
    # returns, a hung collective). SIGKILL the group and say so; complete checkpoints are kept.
    ckpts = RunLayout(run).checkpoints
    writing = ckpts.is_dir() and any(p.stat().st_mtime > sent for p in ckpts.rglob("*") if p.is_file())
    if wait > 0 and derive_state(run)[0] in ACTIVE_STATES and not writing:
        kill_group(int(pid), grace=5.0)
        reason = f"killed: the worker did not stop within {wait:.0f}s of SIGTERM (stuck, e.g. in a reward that never returns)"
        write_status(run, state="cancelled", ended=time.time(), exit_reason=reason)
        with open(RunLayout(run).train_log, "a", encoding="utf-8") as fh:
            fh.write(f"cancel: {reason}; its process group was sent SIGKILL\n")
    return True


def request_save(run: Path) -> None:
    """Ask the worker to save a checkpoint at the next step."""
    run = Path(run)
    if derive_state(run)[0] not in ACTIVE_STATES:
        raise SageError(f"run {run.name} is not running", hint="only a running run can save a checkpoint now")
    (RunLayout(run).save_trigger).touch()


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


def remove_run(run: Path) -> None:
    """Delete a run we made, inside the runs home, that is not running; nothing else."""
    import shutil

    run = Path(run)
    home = runs_home().resolve()
    if run.is_symlink() or run.resolve().parent != home:
        raise SageError(
            f"{run} is not a run folder directly inside the runs home {home}; refusing to delete it",
            hint="only runs under SAGE_FT_HOME are deleted; remove other folders yourself",
        )
    if not RunLayout(run).is_ours():
        raise not_ours(run, "delete it")
    if derive_state(run)[0] in ACTIVE_STATES:
        raise SageError(f"run {run.name} is running", hint="cancel it first (`sage-ft-tui cancel`)")
    try:
        shutil.rmtree(run)
    except PermissionError as e:
        raise permission_error(e.filename or run, "the run folder") from None


__all__ = [
    "RunInfo",
    "read_status",
    "write_status",
    "lock_held",
    "run_lock",
    "derive_state",
    "run_info",
    "list_runs",
    "create_run",
    "new_run_dir",
    "load_config",
    "launch",
    "cancel",
    "request_save",
    "wait_for_end",
    "follow",
    "checkpoints",
    "remove_run",
    "check_can_train",
    "load_status",
    "UNREADABLE",
    "worker_command",
    "EventFollower",
    "shared_gpu_warning",
    "config_warnings",
]
