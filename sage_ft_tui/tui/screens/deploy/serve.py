"""Serve: choose backend/host/port, start or stop the server, watch its state and log.

Start is the job screens' job (deploy/job.py): `sage-ft-tui serve RUN --json` in a
subprocess that returns once the server answers ("starting…" until then; its result or
error record read through engine/jobs.py). Stop asks the engine to stop the run's server,
also while a start waits for it. The state and the log tail are polled in a thread worker
that re-arms itself only after each poll finishes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Input, Log, Select, Static

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.runs.layout import RunLayout
from sage_ft_tui.tui.screens.base import TopBar
from sage_ft_tui.tui.screens.deploy.job import JobScreen
from sage_ft_tui.tui.screens.deploy.pick import no_run_error, pick_run, served_name

POLL_S = 1.0


class ServePolled(Message):
    def __init__(self, row: dict, tail: list[str]):
        super().__init__()
        self.row = row
        self.tail = tail


class ServeStopped(Message):
    def __init__(self, info: Optional[dict], error: Optional[SageError]):
        super().__init__()
        self.info = info
        self.error = error


def serve_command(run: str, *, backend: str, mode: str, host: str, port: int, api_key: str) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "sage_ft_tui",
        "serve",
        run,
        "--json",
        "--backend",
        backend,
        "--host",
        host,
        "--port",
        str(port),
    ]
    if mode in ("adapter", "merged"):
        cmd.append(f"--{mode}")
    return cmd  # the API key travels in the environment (SAGE_FT_API_KEY), not on the command line


def default_port(preferred: int = 8000) -> int:
    """8000 when it is free, else 0 (the server asks the OS for a free port)."""
    from sage_ft_tui.engine.deploy.net import port_free

    return preferred if port_free("127.0.0.1", preferred) else 0


class ServeScreen(JobScreen):
    WHERE = "Serve"
    JOB, START = "serve", "start"  # Stop is not the job's cancel: it stops the server, started or starting
    DEFAULT_CSS = """
    ServeScreen #serve-body { height: 1fr; }
    ServeScreen #serve-form { width: 40; height: 1fr; }
    ServeScreen #serve-right { width: 1fr; height: 1fr; }
    ServeScreen #serve-state-box { height: auto; }
    ServeScreen #serve-log-box { height: 1fr; }
    ServeScreen .field-label { color: $text-muted; }
    ServeScreen #serve-buttons { height: 3; margin-top: 1; }
    ServeScreen #serve-buttons Button { margin-right: 1; }
    """
    BINDINGS = [
        Binding("escape", "back", "Back", id="nav.back"),
        # most useful first, and only what works now: Start (or Merge first) before a server
        # runs, Chat then Stop while one answers
        # one meaning per ctrl key across screens: ctrl+g starts a server (here and on Chat),
        # ctrl+t is Chat (t, as on Runs and the Monitor), ctrl+s is Save (Review)
        Binding("ctrl+g", "start", "Start server", id="serve.start"),
        # ctrl keys with priority: the form has text fields and Selects (type-to-search)
        Binding("ctrl+t", "chat", "Chat", id="serve.chat", priority=True),
        Binding("ctrl+x", "stop", "Stop server", id="serve.stop"),
        Binding("ctrl+b", "merge_first", "Merge first", id="serve.merge", priority=True),
    ]

    def __init__(self, run_dir: Optional[str] = None, *, start: bool = False, **kw):
        super().__init__(Path(run_dir) if run_dir else (Path(p) if (p := pick_run("merged")) else None), **kw)
        self.start_at_once = start  # opened by Chat's "Start server": start once the state is known
        self.row: dict = {}
        self.stopping = False  # Stop's own worker runs
        self._polling = False
        self._timer = None
        self.outcome: Optional[str] = None  # Stop's result ("stopped · port 8000 freed"), shown while nothing serves
        self.stopped_start = False  # Stop ended a start (the job running): its "did not come up" is no error
        self.port_shown = False  # the Port field shows the running server's own port once

    def compose(self) -> ComposeResult:
        name = self.run_dir.name if self.run_dir else "no run"
        yield TopBar(f"Serve · {name}", note="OpenAI-compatible API", id="topbar")
        with Horizontal(id="serve-body"):
            with Vertical(id="serve-form", classes="panel") as v:
                v.border_title = "Server"
                yield Static("Backend", classes="field-label")
                yield Select(
                    [
                        ("auto (vLLM with a GPU, else transformers)", "auto"),
                        ("transformers", "transformers"),
                        ("vLLM", "vllm"),
                    ],
                    value="auto",
                    id="serve-backend",
                    allow_blank=False,
                )
                yield Static("Serve", classes="field-label")
                yield Select(
                    [("auto", "auto"), ("merged model", "merged"), ("adapter on base (vLLM)", "adapter")],
                    value="auto",
                    id="serve-mode",
                    allow_blank=False,
                )
                yield Static("Host (not loopback: needs an API key and vLLM)", classes="field-label")
                yield Input("127.0.0.1", id="serve-host")
                yield Static("Port (0: any free port)", classes="field-label")
                yield Input(str(default_port() if self.app.live else 8000), id="serve-port", type="integer")
                yield Static("API key (optional on 127.0.0.1)", classes="field-label")
                yield Input("", id="serve-key", password=True)
                with Horizontal(id="serve-buttons"):
                    yield Button("Start", id="serve-go", variant="primary")
                    yield Button("Stop", id="serve-stop", variant="error")
            with Vertical(id="serve-right"):
                with Vertical(id="serve-state-box", classes="panel") as v:
                    v.border_title = "State"
                    yield Static("", id="serve-state")
                    yield Static("", id="error", classes="error")
                with Vertical(id="serve-log-box", classes="panel") as v:
                    v.border_title = RunLayout(".").serve_log.name
                    yield Log(id="serve-log", max_lines=500)
        yield from self.footer()

    def on_mount(self) -> None:
        if self.run_dir is None:
            self.say_error(no_run_error("serve"))
            self.query_one("#serve-go", Button).disabled = True
            self._show({"state": "no run"})
            return
        self._show({"state": "checking…"})
        self._poll()

    # ---- polling (re-armed after each poll) -------------------------------------------
    def _poll(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if self._polling or self.run_dir is None:
            return
        self._polling = True
        run = self.run_dir

        def job() -> None:
            from sage_ft_tui.engine.deploy import serve as sv
            from sage_ft_tui.engine.deploy.serve_info import read_serve

            try:
                row = sv.status(run)[0]
            except SageError as e:
                row = {"state": f"error: {e.message}"}
            info = read_serve(run) or {}
            tail = (
                sv.log_tail(run, 200, start=int(info.get("log_offset") or 0))
                if (RunLayout(run).serve_log).exists()
                else []
            )
            self.post_message(ServePolled(row, tail))

        self.run_worker(job, thread=True, name="serve-poll", group="serve-poll", exit_on_error=False)

    def on_serve_polled(self, message: ServePolled) -> None:
        self._polling = False
        self.row = message.row
        if not self.port_shown and message.row.get("port"):
            # reopened on a running server: its port, not the free one a new start would take
            self.port_shown = True
            self.query_one("#serve-port", Input).value = str(message.row["port"])
        if not (self.running or self.stopping):
            self._show(message.row)
        self._set_log(message.tail)
        self.refresh_bindings()
        if self.start_at_once:
            self.start_at_once = False
            if self.check_action("start", ()):
                self.action_start()
                return  # its end polls again
        self._timer = self.set_timer(POLL_S, self._poll)

    def _set_log(self, lines: list[str]) -> None:
        log = self.query_one("#serve-log", Log)
        if list(log.lines[-len(lines) :] if lines else []) == lines and log.line_count >= len(lines):
            return
        log.clear()
        log.write_lines(lines)

    def _show(self, row: dict) -> None:
        t = Text()
        state = row.get("state", "?")
        if self.outcome and state in ("not serving", "checking…"):
            state = self.outcome  # why nothing serves: the Stop just done, in its own words
        style = (
            "bold green"
            if state == "ready"
            else ("bold yellow" if state in ("starting", "starting…", "checking…") else "bold")
        )
        t.append("state    ", style="dim")
        t.append(f"{state}\n", style=style)
        if row.get("url"):
            t.append("url      ", style="dim")
            t.append(f"{row['url']}/v1\n")
            t.append("model    ", style="dim")
            t.append(f"{row.get('model')}\n")
            t.append("backend  ", style="dim")
            t.append(f"{row.get('backend')} ({row.get('mode')}), pid {row.get('pid')}\n")
            t.append("api key  ", style="dim")
            t.append(
                "required\n"
                if row.get("api_key_enforced")
                else ("not enforced\n" if row.get("api_key") == "set" else "none (loopback)\n")
            )
            if row.get("startup_s"):
                t.append("start-up ", style="dim")
                t.append(f"{row['startup_s']:.1f}s\n")
        if self.unmerged() and not row.get("url"):
            t.append("not merged yet: ctrl+b merges it first (transformers serves merged models;\n", style="italic")
            t.append("vLLM can serve the adapter on its base)\n", style="italic")
        self.query_one("#serve-state", Static).update(t)

    # ---- actions ---------------------------------------------------------------------
    def _serving(self) -> bool:
        return self.row.get("state") in ("ready", "starting") or str(self.row.get("state", "")).startswith(
            "not answering"
        )

    def check_action(self, action: str, parameters: tuple) -> Optional[bool]:
        # an action that does not apply now is hidden (False), not dimmed: the footer shows what works
        if action == "start":
            return not (self.running or self.stopping or self.run_dir is None or self._serving())
        if action == "stop":  # also while starting: a server that is slow to answer can be stopped
            return not self.stopping and self.run_dir is not None and "pid" in self.row
        if action == "chat":
            return self.row.get("state") == "ready"
        if action == "merge_first":
            return self.unmerged() and not self._serving()  # hidden once there is a merged model
        return True

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "serve-go":
            self.action_start()
        elif event.button.id == "serve-stop":
            self.action_stop()

    def unmerged(self) -> bool:
        """transformers serve needs the merged model: offer the merge first (one key)."""
        return self.run_dir is not None and not RunLayout(self.run_dir).merged.is_dir()

    def action_merge_first(self) -> None:
        if self.run_dir is not None:
            self.app.open("merge", str(self.run_dir))

    def action_start(self) -> None:
        if self.running or self.stopping or self.run_dir is None:
            return
        try:
            port = int(self.query_one("#serve-port", Input).value or "8000")
        except ValueError:
            self.say_error(SageError("the port must be a number", hint="e.g. 8000, or 0 for any free port"))
            return
        key = self.query_one("#serve-key", Input).value.strip()
        cmd = serve_command(
            str(self.run_dir),
            backend=str(self.query_one("#serve-backend", Select).value),
            mode=str(self.query_one("#serve-mode", Select).value),
            host=self.query_one("#serve-host", Input).value.strip() or "127.0.0.1",
            port=port,
            api_key=key,
        )
        env = dict(os.environ)
        env.pop("SAGE_FT_API_KEY", None)
        if key:
            env["SAGE_FT_API_KEY"] = key
        self.say_error(None)
        self.stopped_start = False
        self.outcome = None
        self._show({"state": "starting…"})
        self.start_job(cmd, env=env)

    def set_busy(self, busy: bool) -> None:
        self.query_one("#serve-go", Button).disabled = busy

    def job_finished(self, result: Optional[dict], error: Optional[SageError]) -> None:
        """The start's end: the server answers (its description), or why it did not."""
        if self.stopped_start:  # stopped while starting: Stop's own result says what happened
            self.stopped_start = False
            if not self.stopping:  # the stop is done already
                self._shown_end(None, None, "start")
            return
        self._shown_end(result, error, "start")

    def action_stop(self) -> None:
        if self.stopping or self.run_dir is None:
            return
        self.stopped_start = self.running
        self.stopping = True
        self._show({**self.row, "state": "stopping…"})
        self.refresh_bindings()
        run = self.run_dir

        def job() -> None:
            from sage_ft_tui.engine.deploy import serve as sv

            try:
                self.post_message(ServeStopped(sv.stop(run), None))
            except SageError as e:
                self.post_message(ServeStopped(None, e))

        self.run_worker(job, thread=True, name="serve-stop", exclusive=True, exit_on_error=False)

    def on_serve_stopped(self, message: ServeStopped) -> None:
        self.stopping = False
        self._shown_end(message.info, message.error, "stop")

    def _shown_end(self, info: Optional[dict], error: Optional[SageError], action: str) -> None:
        """What a start or a stop ended with: its error (with the server log's last lines), the
        "Server ready" note, or the stop's outcome; then polling goes on."""
        self.query_one("#serve-go", Button).disabled = self.running  # a start Stop ended may still wind down
        if error is not None:
            err = error
            if self.unmerged() and "no merged model" in err.message:
                # the way forward on this screen, not a command to type elsewhere
                err = SageError(err.message, kind=err.kind, hint="ctrl+b merges it first (then start again here)")
            self.say_error(err)
            tail = list(getattr(error, "log_tail", None) or [])
            if tail:
                self._set_log(tail)
        elif action == "start" and info:
            # short, and gone before it could sit over the next screen (Chat's status and box)
            name = served_name(str(info.get("model") or ""), self.run_dir)
            self.notify(f"{name} at {info.get('url')}/v1", title="Server ready", timeout=4)
        elif action == "stop" and info:
            from sage_ft_tui.engine.deploy.serve import stopped_text

            self.outcome = stopped_text(info)
            self.row = {"state": "not serving"}
        self._show(info if action == "start" and info else {"state": "checking…"})
        if info and action == "start":
            self.row = {**info, "state": "ready"}
        self.refresh_bindings()
        self._poll()

    def action_chat(self) -> None:
        if self.run_dir is not None:
            self.app.open("chat", str(self.run_dir))

    def on_screen_suspend(self) -> None:
        self.app.clear_notifications()  # the server's toasts must not cover the next screen's input
