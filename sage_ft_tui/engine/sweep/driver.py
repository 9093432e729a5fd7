"""The sweep driver: a small detached process (`python -m sage_ft_tui.engine.sweep.driver DIR`)
that asks Optuna for trials, creates each as a normal run (`runs.start.start_run`, not
launched), puts it in the queue, follows its events, reports the objective, cancels it when
the median pruner says so, and tells the study how it ended.

It holds an exclusive flock on the sweep's .lock for its life (two drivers never run one
sweep), ignores SIGHUP (a dropped SSH session) and ends on SIGTERM leaving the trials'
runs alone. A new driver (`sweep --resume NAME`, or the same command again) adopts the
trials still running and continues; finished trials are never run again."""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from sage_ft_tui.engine.errors import SageError, clip
from sage_ft_tui.engine.fsutil import atomic_write_json, read_json
from sage_ft_tui.engine.paths import list_dir
from sage_ft_tui.engine.queue import enqueue, ensure_scheduler, entries
from sage_ft_tui.engine.runs.control import cancel
from sage_ft_tui.engine.runs.events import EventFollower
from sage_ft_tui.engine.runs.layout import FINAL_STATES, RunLayout
from sage_ft_tui.engine.runs.start import start_run
from sage_ft_tui.engine.runs.state import derive_state, read_status
from sage_ft_tui.engine.sweep import prune
from sage_ft_tui.engine.sweep.layout import SweepLayout, trial_run_name
from sage_ft_tui.engine.sweep.params import trial_config
from sage_ft_tui.engine.sweep.store import SweepSpec, load_spec, open_study

POLL_S = 0.3
QUEUE_CHECK_S = 5.0  # how often a trial still waiting is looked for in the queue
MAX_CREATE_FAILURES = 3  # trials in a row that could not even be created: the sweep stops, saying why


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


def _queue_tag(spec: SweepSpec, number: int) -> str:
    return f"sweep {spec.name} trial {number}"


def enqueue_trial(run: Path, home: Path, tag: str) -> None:
    enqueue(run, home=home, tag=tag)
    ensure_scheduler(home=home)


def queue_entry(run: Path, home: Path) -> Any:
    """The run's entry in the queue (any state), None when it has none."""
    me = Path(run).resolve()
    return next((e for e in entries(home=home) if Path(e.run).resolve() == me), None)


@dataclass
class Active:
    trial: Any  # optuna.Trial
    run: Path
    follower: EventFollower
    events: list[dict] = field(default_factory=list)
    reported: set[int] = field(default_factory=set)
    queue_checked: float = 0.0


class Driver:
    def __init__(self, lay: SweepLayout):
        self.lay = lay
        self.home = lay.runs_home
        self.spec = load_spec(lay)
        self.study = open_study(lay, self.spec)
        self.dists = {p.key: p.optuna_distribution() for p in self.spec.params}
        self.active: dict[int, Active] = {}
        self.ending: list[Path] = []  # pruned trials' runs still saving and stopping after the cancel
        self.stop = False
        self.create_failures = 0
        self.error = ""

    # ---- trials ------------------------------------------------------------------
    def finished(self) -> int:
        from optuna.trial import TrialState

        done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        # a trial whose worker died under it (a reboot) does not count: a new trial takes its place
        trials = self.study.get_trials(deepcopy=False)
        return sum(1 for t in trials if t.state in done and not t.user_attrs.get("interrupted"))

    def _tell(self, number: int, state: str, value: Optional[float] = None, note: str = "") -> None:
        from optuna.trial import TrialState

        if note and number in self.active:
            self.active[number].trial.set_user_attr("note", note)
        st = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "fail": TrialState.FAIL}[state]
        self.study.tell(number, value if st == TrialState.COMPLETE else None, state=st)
        self.active.pop(number, None)
        log(
            f"trial {number}: {state}"
            + (f" ({value:.6g})" if value is not None else "")
            + (f" — {note}" if note else "")
        )

    def new_trial(self) -> None:
        from optuna.trial import TrialState

        trial = self.study.ask(self.dists)
        name = trial_run_name(self.spec.name, trial.number)
        try:
            cfg = trial_config(self.spec.base_config(), dict(trial.params), name)
            run = start_run(cfg, home=self.home, launch=False, unique=True).run
            atomic_write_json(
                RunLayout(run).sweep_tag, {"sweep": self.spec.name, "trial": trial.number, "params": trial.params}
            )
            trial.set_user_attr("run", str(run))
            enqueue_trial(run, self.home, _queue_tag(self.spec, trial.number))
        except SageError as e:
            trial.set_user_attr("note", e.oneline())
            self.study.tell(trial.number, None, state=TrialState.FAIL)
            self.create_failures += 1
            log(f"trial {trial.number}: could not be created: {e.oneline()}")
            if self.create_failures >= MAX_CREATE_FAILURES:
                self.error = f"{self.create_failures} trials in a row could not be created; the last: {e.oneline()}"
                self.stop = True
            return
        self.create_failures = 0
        self.active[trial.number] = Active(trial, run, EventFollower(RunLayout(run).events))
        log(f"trial {trial.number}: {run.name} queued with {trial.params}")

    def adopt(self) -> None:
        """Trials a previous driver left running: follow them again (their runs went on)."""
        import optuna
        from optuna.trial import TrialState

        for ft in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            run = ft.user_attrs.get("run")
            run_path = Path(run) if run else self._tagged_run(ft.number)
            if run_path is None or not RunLayout(run_path).is_ours():
                self.study.tell(ft.number, None, state=TrialState.FAIL)
                log(f"trial {ft.number}: lost (the driver stopped before its run was made)")
                continue
            trial = optuna.Trial(self.study, ft._trial_id)
            if not run:
                trial.set_user_attr("run", str(run_path))
            act = Active(
                trial, run_path, EventFollower(RunLayout(run_path).events), reported=set(ft.intermediate_values)
            )
            self.active[ft.number] = act
            if derive_state(run_path)[0] == "created" and queue_entry(run_path, self.home) is None:
                # the driver stopped between making the run and queueing it
                enqueue_trial(run_path, self.home, _queue_tag(self.spec, ft.number))
                log(f"trial {ft.number}: {run_path.name} queued again")
            else:
                log(f"trial {ft.number}: following {run_path.name} again")
        if any(derive_state(a.run)[0] == "created" for a in self.active.values()):
            ensure_scheduler(home=self.home)  # after a reboot the queue's scheduler is gone too

    def _tagged_run(self, number: int) -> Optional[Path]:
        for p in list_dir(self.home, "the runs home"):
            tag = read_json(RunLayout(p).sweep_tag) if p.is_dir() else None
            if isinstance(tag, dict) and tag.get("sweep") == self.spec.name and tag.get("trial") == number:
                return p
        return None

    def check(self, number: int, act: Active) -> None:
        state = derive_state(act.run)[0]  # before reading: events written before a final state are all there
        act.events.extend(act.follower.poll())
        if self.spec.prune and state not in FINAL_STATES and prune.should_prune(act.trial, act.events, act.reported):
            step = max(act.reported)
            try:
                cancel(act.run)
                self.ending.append(act.run)
            except SageError:
                pass  # it ended on its own meanwhile: the decision stands
            self._tell(
                number, "pruned", note=f"pruned at step {step}: its {self._objective_text(act)} was above the median"
            )
            return
        if state == "created" and time.time() - act.queue_checked > QUEUE_CHECK_S:
            act.queue_checked = time.time()
            entry = queue_entry(act.run, self.home)
            if entry is None or entry.state not in ("queued", "started"):
                # the scheduler could not launch it, or someone took it out of the queue
                why = (entry.note if entry is not None and entry.note else "") or "it was taken out of the queue"
                self._tell(number, "fail", note=f"never started: {clip(why, 200)}")
            return
        if state not in FINAL_STATES:
            return
        act.events.extend(act.follower.poll())
        objective = prune.objective_of(act.events)
        if objective:
            prune.report(act.trial, prune.points(act.events, objective), act.reported)
        if state == "completed":
            value = prune.final_value(act.events, objective) if objective else None
            if value is None:
                self._tell(number, "fail", note="completed without a loss to rank it by")
            else:
                act.trial.set_user_attr("objective", objective)
                self._tell(number, "complete", value)
        elif state == "failed" and derive_state(act.run)[1] == "worker died":
            act.trial.set_user_attr("interrupted", True)
            self._tell(number, "fail", note="interrupted: its worker died (a reboot?); a new trial takes its place")
        else:
            reason = read_status(act.run).get("exit_reason") or state
            self._tell(number, "fail", note=f"the run {state}: {clip(str(reason), 200)}")

    def _objective_text(self, act: Active) -> str:
        return prune.OBJECTIVE_TEXT.get(prune.objective_of(act.events) or "", "loss").split(" (")[0]

    # ---- the loop ----------------------------------------------------------------
    def run(self) -> None:
        self.adopt()
        write_summary(self.lay, self.study, self.spec, self.active)
        last_write = 0.0
        while not self.stop:
            for number, act in list(self.active.items()):
                self.check(number, act)
            while (
                not self.stop
                and len(self.active) < self.spec.parallel
                and self.finished() + len(self.active) < self.spec.trials
            ):
                self.new_trial()
            self.ending = [r for r in self.ending if derive_state(r)[0] not in FINAL_STATES]
            if not self.active and not self.ending:  # done once the last cancelled trial has stopped too
                break
            if time.time() - last_write > 2.0:
                write_summary(self.lay, self.study, self.spec, self.active)
                last_write = time.time()
            time.sleep(POLL_S)
        write_summary(self.lay, self.study, self.spec, self.active)


def write_summary(lay: SweepLayout, study: Any, spec: SweepSpec, active: dict[int, Active]) -> None:
    """trials.json: every trial's number, run, params, state, value, objective and note."""
    from optuna.trial import TrialState

    names = {
        TrialState.COMPLETE: "complete",
        TrialState.PRUNED: "pruned",
        TrialState.FAIL: "failed",
        TrialState.RUNNING: "running",
        TrialState.WAITING: "waiting",
    }
    rows = []
    for t in study.get_trials(deepcopy=False):
        iv = t.intermediate_values
        last = max(iv) if iv else None
        rows.append(
            {
                "number": t.number,
                "run": t.user_attrs.get("run"),
                "params": dict(t.params),
                "state": "interrupted" if t.user_attrs.get("interrupted") else names.get(t.state, str(t.state).lower()),
                "value": t.value if t.state == TrialState.COMPLETE else (iv[last] if last is not None else None),
                "step": last,
                "objective": t.user_attrs.get("objective"),
                "note": t.user_attrs.get("note", ""),
            }
        )
    atomic_write_json(lay.trials, {"sweep": spec.name, "updated": time.time(), "trials": rows})


def _set_driver(lay: SweepLayout, **fields) -> None:
    cur = read_json(lay.driver) or {}
    atomic_write_json(lay.driver, {**(cur if isinstance(cur, dict) else {}), **fields})


def main(argv: Optional[list[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m sage_ft_tui.engine.sweep.driver SWEEP_DIR", file=sys.stderr)
        return 2
    lay = SweepLayout(args[0])
    fd = os.open(lay.lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log("another driver runs this sweep; this one ends")
        return 0
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    _set_driver(
        lay, pid=os.getpid(), host=socket.gethostname(), started=time.time(), state="running", ended=None, error=""
    )
    driver: Optional[Driver] = None

    def on_term(signum, frame):
        if driver is not None:
            driver.stop = True
        else:
            raise SystemExit(143)

    signal.signal(signal.SIGTERM, on_term)
    try:
        driver = Driver(lay)
        log(f"sweep {driver.spec.name}: {driver.finished()} of {driver.spec.trials} trials done")
        driver.run()
        done = driver.finished() >= driver.spec.trials
        state = "failed" if driver.error else ("completed" if done else "stopped")
        _set_driver(lay, state=state, ended=time.time(), error=driver.error)
        log(f"sweep {driver.spec.name}: {state}" + (f": {driver.error}" if driver.error else ""))
        return 1 if driver.error else 0
    except SageError as e:
        _set_driver(lay, state="failed", ended=time.time(), error=e.oneline())
        log(e.oneline())
        return 1
    except Exception as e:  # the driver's own bug: said in driver.json and the log, with the traceback
        _set_driver(lay, state="failed", ended=time.time(), error=f"internal error: {clip(str(e), 200)}")
        traceback.print_exc()
        return 1
    finally:
        os.close(fd)


if __name__ == "__main__":
    sys.exit(main())
