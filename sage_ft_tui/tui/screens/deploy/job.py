"""What the after-training job screens share: one CLI job at a time (`sage-ft-tui eval|export
... --json`) run by `engine.jobs.run_job` in a thread worker; its progress and its end come
back as messages; Cancel (SIGTERM to the job) shows only while it runs, Back only while it
does not. A screen names its job and its start/cancel actions, and fills in what to show."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Optional

from textual.message import Message

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.tui.screens.base import BaseScreen


class JobProgress(Message):
    def __init__(self, stage: str, info: dict):
        super().__init__()
        self.stage = stage
        self.info = info


class JobFinished(Message):
    def __init__(self, result: Optional[dict], error: Optional[SageError]):
        super().__init__()
        self.result = result
        self.error = error


class JobScreen(BaseScreen):
    JOB = ""  # the job's name in its records (engine/jobs.py)
    START = ""  # the action that starts it: hidden while it runs
    CANCEL = ""  # the action that cancels it: shown only while it runs (none: the screen says how it stops)

    def __init__(self, run_dir: Optional[Path] = None, **kw):
        super().__init__(**kw)
        self.run_dir = run_dir
        self.proc: Optional[subprocess.Popen] = None
        self.running = False

    # ---- to fill in ----------------------------------------------------------------------
    def set_busy(self, busy: bool) -> None:
        """Disable the form while the job runs (and enable it again)."""

    def job_progress(self, stage: str, info: dict) -> None:
        """A progress record arrived."""

    def job_finished(self, result: Optional[dict], error: Optional[SageError]) -> None:
        """The job ended: its result record, or its error."""

    def cancelling(self) -> None:
        """Say that the job is being cancelled."""

    # ---- the plumbing --------------------------------------------------------------------
    def start_job(self, cmd: list[str], env: Optional[dict[str, str]] = None) -> None:
        self.running = True
        self._busy(True)
        self.run_worker(lambda: self._run(cmd, env), thread=True, name=self.JOB, exclusive=True, exit_on_error=False)

    def _run(self, cmd: list[str], env: Optional[dict[str, str]]) -> None:
        from sage_ft_tui.engine.jobs import run_job

        def started(proc: subprocess.Popen) -> None:
            self.proc = proc

        out = run_job(
            cmd,
            job=self.JOB,
            env=env,
            on_start=started,
            on_progress=lambda p: self.post_message(JobProgress(p.stage, p.info)),
        )
        self.post_message(JobFinished(out.result, out.error))

    def cancel_job(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the job cleans up what it half made and exits 130
            self.cancelling()

    def on_job_progress(self, message: JobProgress) -> None:
        self.job_progress(message.stage, message.info)

    def on_job_finished(self, message: JobFinished) -> None:
        self.running = False
        self.proc = None
        self._busy(False)
        self.job_finished(message.result, message.error)

    def _busy(self, busy: bool) -> None:
        self.set_busy(busy)
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple) -> Optional[bool]:
        # an action that does not apply now is hidden (False), not dimmed: the footer shows what works
        if action == self.START:
            return not self.running and self.run_dir is not None
        if action == self.CANCEL:
            return self.running
        if action == "back":
            return not self.running
        return True
