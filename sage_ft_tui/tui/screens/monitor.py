"""Monitor: a run's progress, loss chart, learning rate, throughput, GPUs, CPU/RAM and log.

Live: a thread worker replays events.jsonl and then follows it (byte offsets; batches
posted as messages); the screen folds them into a bounded RunModel and redraws at 2 Hz
when something changed, never per event. Hardware is polled by a worker that starts the
next poll only after the previous one finished (Dolphie's pattern). Detaching leaves the
run going; cancel asks first.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import RichLog, Static
from textual.worker import Worker, WorkerState, get_current_worker

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.fsutil import fmt_duration
from sage_ft_tui.engine.runs.events import read_events
from sage_ft_tui.engine.runs.layout import ACTIVE_STATES as ACTIVE
from sage_ft_tui.engine.runs.layout import FINAL_STATES, RunLayout
from sage_ft_tui.tui import notice
from sage_ft_tui.tui.follow import LOG_TAIL_BYTES, RunFollower, tail_lines
from sage_ft_tui.tui.messages import EventsArrived, HardwareRead, LogTail, RunState
from sage_ft_tui.tui.run_model import RunModel, guard_banner
from sage_ft_tui.tui.screens.base import BaseScreen, TopBar
from sage_ft_tui.tui.screens.runs import RESUMABLE, state_text
from sage_ft_tui.tui.widgets.charts import S, bar, line_chart
from sage_ft_tui.tui.widgets.panels import GpuPanel, host_text, stats_text
from sage_ft_tui.tui.widgets.plot import Plot

REDRAW_S = 0.5  # 2 Hz: the chart moves smoothly enough, the CPU stays idle
POLL_S = 0.25
HW_POLL_S = 2.0


class MonitorScreen(BaseScreen):
    # Most useful first; actions that do not apply now are hidden, so the footer fits 80 columns.
    BINDINGS = [
        Binding("m", "after('merge')", "Merge", id="monitor.merge"),
        Binding("v", "after('serve')", "Serve", id="monitor.serve"),
        Binding("t", "after('chat')", "Chat", id="monitor.chat"),
        Binding("e", "after('eval')", "Evaluate", id="monitor.eval", tooltip="Base vs tuned on the held-out rows"),
        Binding("r", "resume", "Resume", id="monitor.resume"),
        Binding("c", "cancel_run", "Cancel", id="monitor.cancel", tooltip="Cancel the run (saves a checkpoint)"),
        Binding("s", "save_now", "Save now", id="monitor.save", tooltip="Save a checkpoint now"),
        Binding("o", "toggle_log", "Log", id="monitor.log", tooltip="Show or hide train.log (its output)"),
        # escape leaves: "Detach" while the run goes on, "Back" once it has finished (d is Home's Demo)
        Binding("escape", "detach", "Detach", id="monitor.detach"),
        Binding("escape", "back", "Back", id="monitor.back"),
    ]

    def __init__(self, run: str):
        super().__init__()
        self.run = Path(run)
        self.model = RunModel(self.run.name)
        self.drawn = -1
        self.drawn_curve = -1
        self.drawn_hw = -1
        self.in_flight = threading.Semaphore(2)  # batches posted but not folded yet
        self.folder_state: Optional[tuple[str, str]] = None
        self.local_hw = False
        self.seen_active = False  # watched while it ran: its end rings the terminal (not a finished folder reopened)
        self.told_end = False

    def compose(self) -> ComposeResult:
        yield TopBar(f"Monitor · {self.run.name}", note="", id="topbar")
        yield Static(id="mon-status")
        yield Static(id="mon-banner")
        with Horizontal(id="mon-top"):
            with Vertical(id="mon-chart-box", classes="panel") as v:
                v.border_title = "Loss"
                yield Plot(id="mon-chart")
            with VerticalScroll(id="mon-side", classes="panel") as v:  # scrolls at 80×24
                v.border_title = "Training"
                yield Static(id="mon-stats")
        yield Horizontal(id="mon-gpus")
        yield Static(id="mon-host")
        log = RichLog(id="mon-log", max_lines=500, auto_scroll=True, wrap=True, classes="panel")
        log.border_title = RunLayout(self.run).train_log.name
        yield log
        yield from self.footer()

    # ---- start -------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.query_one("#mon-banner").display = False
        if not (RunLayout(self.run).config).exists() and not (RunLayout(self.run).events).exists():
            self._banner({"message": f"{self.run}: not a run folder", "hint": "pick a run from the Runs screen"})
        if self.app.live:
            self.run_worker(
                self._follow, thread=True, name="monitor.follow", group="monitor.follow", exit_on_error=False
            )
            self.set_interval(REDRAW_S, self._redraw)
        else:
            self._load_static()
            self._redraw()

    def _load_static(self) -> None:
        """Snapshot/screenshot mode: read the file once; recorded hardware when it has none."""
        self.model.feed(read_events(RunLayout(self.run).events).events)
        if not self.model.gpus and not self.model.host and os.environ.get("SAGE_FT_HW_RECORDED"):
            from sage_ft_tui.engine.hardware.probe import get_backend, snapshot_to_event

            self.model.feed_hw(snapshot_to_event(get_backend().snapshot()))
        lines = tail_lines(RunLayout(self.run).train_log, LOG_TAIL_BYTES)[0]
        self._write_log(lines)

    # ---- the follower thread ----------------------------------------------------------
    def _follow(self) -> None:
        """Post what the run folder says, in an order that keeps header, footer and log in
        step (tui/follow.py): the events first, then the log lines, then the folder state."""
        worker = get_current_worker()
        follower = RunFollower(self.run)
        told = 0
        while not worker.is_cancelled:
            got = follower.poll()
            if len(follower.skipped) > told:
                told = self._tell_skipped(follower.skipped, told)
            if got.events or got.first:
                # back-pressure: a huge replay never sits in the message queue all at once
                while not self.in_flight.acquire(timeout=0.5):
                    if worker.is_cancelled:
                        return
                self.post_message(EventsArrived(got.events, replay=got.first))
            if got.lines:
                self.post_message(LogTail(got.lines))
            if got.state is not None:
                self.post_message(RunState(*got.state))
            if not got.events:
                time.sleep(1.0 if follower.state[0] in FINAL_STATES else POLL_S)

    def _tell_skipped(self, skipped: list, told: int) -> int:
        """Say which events.jsonl lines could not be read (rare: once per new batch of them)."""
        new = skipped[told:]
        shown = ", ".join(f"line {s.line} ({s.reason})" for s in new[:3]) + (
            f" and {len(new) - 3} more" if len(new) > 3 else ""
        )
        self.app.call_from_thread(
            self.notify,
            f"skipped {len(new)} unreadable line{'s' if len(new) != 1 else ''} of events.jsonl: {shown}",
            title="Event stream",
            severity="warning",
            timeout=10,
        )
        return len(skipped)

    def on_events_arrived(self, message: EventsArrived) -> None:
        evs = message.events
        self.in_flight.release()
        if self.local_hw and not message.replay:
            evs = [e for e in evs if e.get("kind") != "hw"]
        before = self.model.state
        self.model.feed(evs)
        # replaying, or the run changed state (it ended): show it now, not at the next tick,
        # so the header and footer are never behind the log lines posted after these events
        if message.replay or len(evs) > 1000 or self.model.state != before:
            self._redraw()

    def on_log_tail(self, message: LogTail) -> None:
        self._write_log(message.lines)

    def _write_log(self, lines: list[str]) -> None:
        log = self.query_one(RichLog)
        for line in lines:
            log.write(Text(line))  # wrapped at the panel's width, never cut

    def on_run_state(self, message: RunState) -> None:
        self.folder_state = (message.state, message.detail)
        active = message.state in ACTIVE
        if active and not self.local_hw:
            self.local_hw = True
            self._start_hw_poll()
        elif not active:
            self.local_hw = False
        self.model.version += 1
        self._redraw()

    # ---- hardware polling: one poll at a time, the next scheduled after it ends ---------
    def _start_hw_poll(self) -> None:
        if self.is_attached and self.local_hw:
            self.run_worker(self._poll_hw, thread=True, name="monitor.hw", group="monitor.hw", exit_on_error=False)

    def _poll_hw(self):
        from sage_ft_tui.engine.hardware.probe import get_backend, snapshot_to_event

        return snapshot_to_event(get_backend().snapshot(disk_path=self.run))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.name != "monitor.hw":
            return
        if event.state == WorkerState.SUCCESS:
            self.post_message(HardwareRead(event.worker.result))
            self.set_timer(HW_POLL_S, self._start_hw_poll)
        elif event.state == WorkerState.ERROR:
            self.set_timer(HW_POLL_S * 5, self._start_hw_poll)

    def on_hardware_read(self, message: HardwareRead) -> None:
        self.model.feed_hw(message.reading)

    # ---- drawing -------------------------------------------------------------------------
    def _state(self) -> tuple[str, str]:
        """The events say what happened; the run folder (lock, status.json) says whether the
        worker is still alive: a dead worker with no final event is a failed run."""
        m, folder = self.model, self.folder_state
        if folder is None:
            return m.state, ""
        if m.state in FINAL_STATES:
            return m.state, folder[1] if folder[0] == m.state else ""
        if folder[0] in FINAL_STATES or m.state == "unknown" or folder[0] == "cancelling":
            return folder
        return m.state, ""

    def _tell_end(self, state: str, detail: str) -> None:
        if state in ACTIVE:
            self.seen_active = True
        elif state in FINAL_STATES and self.seen_active and not self.told_end:
            self.told_end = True
            notice.run_ended(self.app, self.run.name, state, detail)

    def _redraw(self) -> None:
        m = self.model
        if not self.is_attached:
            return
        now = self.app.clock()
        state, detail = self._state()
        self._tell_end(state, detail)
        if m.version == self.drawn:
            if state in ACTIVE:  # elapsed and ETA tick between logs
                self.query_one("#mon-status", Static).update(self._status(state, detail, now))
            return
        self.drawn = m.version
        self.query_one("#mon-status", Static).update(self._status(state, detail, now))
        if m.curve_version != self.drawn_curve:
            self.drawn_curve = m.curve_version
            train, evals, total = list(m.train.points), list(m.eval.points), m.total_steps
            self.query_one("#mon-chart", Plot).paint(
                lambda w, h: line_chart([(train, "train")], w, h, markers=[(evals, "◆", "eval")], x_max=total or None)
            )
            box = self.query_one("#mon-chart-box")
            box.border_subtitle = f"── train  ◆ eval ({len(evals)})" if evals else "── train"
        side = self.query_one("#mon-side")
        self.query_one("#mon-stats", Static).update(stats_text(m, side.scrollable_content_region.width or 26))
        self.call_after_refresh(self._say_more)
        if m.hw_version != self.drawn_hw:
            self.drawn_hw = m.hw_version
            self._draw_gpus()
            host = self.query_one("#mon-host", Static)
            host.display = bool(m.host)
            if m.host:
                host.update(host_text(m, host.size.width or self.app.size.width))
        err = m.error or guard_banner(m.guard)
        if err is None and state == "failed" and detail:
            err = {
                "error_kind": "internal",
                "message": f"the run failed: {detail}",
                "hint": "see train.log below (o toggles it)",
            }
        self._banner(err)
        self.refresh_bindings()

    def _say_more(self) -> None:
        """The Training panel scrolls when its figures outgrow it (80×24, a preference run's
        rewards): its border says so, and how to reach them."""
        if not self.is_attached:
            return
        side = self.query_one("#mon-side")
        if side.max_scroll_y > 0:
            side.border_subtitle = "↓ more: tab, ↑↓" if side.scroll_y < side.max_scroll_y else "↑ tab, ↑↓"
        else:
            side.border_subtitle = ""

    def on_resize(self, event) -> None:
        self.model.version += 1  # the figures take the width they now have
        self.call_after_refresh(self._redraw)

    def _status(self, state: str, detail: str, now: float) -> Text:
        m = self.model
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(" ")
        t.append_text(state_text(state, detail))
        step, total = m.step, m.total_steps
        t.append("   step ", style="dim")
        t.append(f"{step}" + (f"/{total}" if total else ""), style="bold")
        if total:
            t.append(" ")
            t.append_text(bar(step / total, 20))
            t.append(f" {step / total:4.0%}")
        if m.epoch is not None:
            t.append("   epoch ", style="dim")
            t.append(f"{m.epoch:.2f}")
        t.append("\n ")
        t.append("elapsed ", style="dim")
        t.append(fmt_duration(m.elapsed(now)))
        t.append("   ETA ", style="dim")
        t.append(fmt_duration(m.eta_at(now)) if state in ACTIVE else "—")
        model = m.start.get("model")
        if model:
            t.append("   model ", style="dim")
            t.append(str(model).rsplit("/", 1)[-1])
        t.append(f"   {m.events} events", style="dim")
        return t

    def _draw_gpus(self) -> None:
        box = self.query_one("#mon-gpus")
        box.display = bool(self.model.gpus)
        have = {p.index: p for p in box.query(GpuPanel)}
        for idx, hist in sorted(self.model.gpus.items()):
            panel = have.get(idx)
            if panel is None:
                panel = GpuPanel(idx, classes="gpu panel")
                box.mount(panel)
                self.call_after_refresh(panel.show, hist)
            else:
                panel.show(hist)

    def _banner(self, err: Optional[dict]) -> None:
        w = self.query_one("#mon-banner", Static)
        if not err:
            w.display = False
            return
        t = Text()
        kind = str(err.get("error_kind") or err.get("kind") or "error")
        if err.get("recovering"):
            t.append(f" ⟳ {kind.upper()} ", style=S("bold reverse $warning"))
        elif err.get("guard"):
            t.append(f" ■ {kind.upper()} ", style=S("bold reverse $accent"))
        else:
            t.append(f" ✗ {kind.upper()} ", style="bold reverse")
        t.append(f" {err.get('message', '')}", style="bold")
        if err.get("hint"):
            t.append(f"\n   → {err['hint']}")
        w.update(t)
        w.display = True

    # ---- keys ----------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> Optional[bool]:
        state = self._state()[0]
        if action in ("cancel_run", "save_now"):
            return state in ACTIVE  # hidden when there is nothing to stop
        if action == "after":  # merge / serve / chat / evaluate need the finished adapter
            if parameters and parameters[0] == "eval" and state == "completed":
                from sage_ft_tui.engine.eval.data import has_eval_split

                return has_eval_split(self.run)  # and evaluate, held-out rows
            return state == "completed"  # hidden until there is an adapter
        if action == "detach":  # hidden once the run has finished (escape goes back)
            return state not in FINAL_STATES
        if action == "back":
            return state in FINAL_STATES
        if action == "resume":
            return state in RESUMABLE
        return True

    def action_resume(self) -> None:
        from sage_ft_tui.engine.runs.start import launch_run

        self.app.background(self, "monitor.resume", lambda: launch_run(self.run, resume=True), self._acted("Resuming"))

    def action_after(self, what: str) -> None:
        self.app.open(what, str(self.run))

    def action_toggle_log(self) -> None:
        log = self.query_one(RichLog)
        log.display = not log.display

    def action_back(self) -> None:
        self.action_detach()

    def action_detach(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()
        if self.model.state in ACTIVE or (self.folder_state and self.folder_state[0] in ACTIVE):
            self.app.notify(f"{self.run.name} keeps running; attach again from Home or Runs.", title="Detached")

    def action_save_now(self) -> None:
        from sage_ft_tui.engine.runs.control import request_save

        self.app.background(self, "monitor.save", lambda: request_save(self.run), self._acted("Checkpoint requested"))

    def action_cancel_run(self) -> None:
        from sage_ft_tui.tui.screens.confirm import Confirm

        def answered(yes: Optional[bool]) -> None:
            if yes:
                from sage_ft_tui.engine.runs.control import CANCEL_WAIT_S, cancel

                self.notify("Cancelling: the worker saves a checkpoint and stops", timeout=3)
                # waits (in the thread) so that a worker stuck past the grace is killed, as `cancel` does
                self.app.background(
                    self, "monitor.cancel", lambda: cancel(self.run, wait=CANCEL_WAIT_S), self._acted("Cancelled")
                )

        self.app.push_screen(
            Confirm(
                f"Cancel {self.run.name}?",
                "It saves a checkpoint, then stops as cancelled. Resume it later with r (here or on Runs).",
                yes="Cancel run",
                no="Keep training",
            ),
            answered,
        )

    def _acted(self, what: str):
        def done(_result, err: Optional[SageError]) -> None:
            if err is not None:
                self.notify(f"{err.message}\n{err.hint}", severity="error")
            else:
                self.notify(what, timeout=3)

        return done
