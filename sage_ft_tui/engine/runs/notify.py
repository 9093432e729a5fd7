"""Notifications when a run ends (issue 24): completed (early stops too) or failed (guardrail
stops too), sent by the worker through apprise (ntfy, Slack, Discord, e-mail, JSON webhooks...)
with the run's name, figures, duration and, on failure, the error line and its hint.

Where the URLs come from: `notify.urls` in config.yaml (what `start --notify` writes), and
`SAGE_FT_NOTIFY` (whitespace-separated) in the worker's environment, which `run`, `resume` and
`quickstart --notify` set for the worker they launch without writing it anywhere (a webhook
URL is a secret). apprise is the `notify` extra: without it a run with URLs logs one warning
and trains. A notifier never harms the run: each send is bounded (SEND_TIMEOUT_S, in a thread),
and every outcome is one line in train.log with the URL's secrets hidden.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.runs.events import read_events
from sage_ft_tui.engine.runs.layout import RunLayout
from sage_ft_tui.engine.runs.state import read_status

NOTIFY_ENV = "SAGE_FT_NOTIFY"
SEND_TIMEOUT_S = 20.0
MISSING = "notify: apprise is not installed, so no notification will be sent; pip install 'sage-ft-tui[notify]'"


def have_apprise() -> bool:
    return importlib.util.find_spec("apprise") is not None


def env_urls() -> list[str]:
    return os.environ.get(NOTIFY_ENV, "").split()


def run_urls(cfg=None) -> list[str]:
    """The run's URLs: the config's, then the environment's (each once)."""
    urls = list(getattr(getattr(cfg, "notify", None), "urls", None) or []) + env_urls()
    return list(dict.fromkeys(u for u in urls if u))


def scheme(url: str) -> str:
    return url.split("://", 1)[0] if "://" in url else url[:12]


def check_urls(urls: list[str], where: str = "--notify") -> Optional[str]:
    """A URL apprise cannot read is a SageError; returns the warning to print when apprise is
    missing (None when all is well)."""
    if not urls:
        return None
    if not have_apprise():
        return "warning: " + MISSING
    import apprise

    for url in urls:
        if not apprise.Apprise().add(url):
            raise SageError(
                f"{where}: apprise cannot read a {scheme(url)}:// URL",
                hint="use one apprise knows, e.g. ntfy://TOPIC, json://HOST:PORT/PATH, slack://..., "
                "mailto://USER:PASSWORD@HOST (https://github.com/caronc/apprise/wiki)",
            )
    return None


def pass_to_worker(urls: list[str]) -> None:
    """`run/resume/quickstart --notify`: the worker launched next inherits the URLs."""
    if urls:
        os.environ[NOTIFY_ENV] = " ".join(dict.fromkeys(env_urls() + list(urls)))


def _fmt_duration(seconds: Optional[float]) -> str:
    if seconds is None or seconds < 0:
        return "?"
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def summary(run: Path) -> tuple[str, str]:
    """(title, body) for how the run ended, from status.json and events.jsonl."""
    st = read_status(run) or {}
    state = st.get("state") or "ended"
    events = read_events(RunLayout(run).events).events
    losses = [e["loss"] for e in events if e.get("kind") == "log" and isinstance(e.get("loss"), (int, float))]
    evals = [e for e in events if e.get("kind") == "eval" and isinstance(e.get("eval_loss"), (int, float))]
    guards = [e for e in events if e.get("kind") == "guard" and e.get("action") == "stopped"]
    first = next((e.get("t") for e in events if isinstance(e.get("t"), (int, float))), None)
    ended = st.get("ended") or time.time()
    lines = [f"run {run.name}: {state} at step {st.get('step', '?')}/{st.get('total_steps', '?')}"]
    if losses:
        lines.append(f"final loss {losses[-1]:.4f}")
    if evals:
        best = min(evals, key=lambda e: e["eval_loss"])
        lines.append(f"best eval loss {best['eval_loss']:.4f} (step {best.get('step')})")
    lines.append(f"took {_fmt_duration(ended - first if first else None)}")
    if guards:
        lines.append(f"guardrail: {guards[-1].get('message', '')}")
    err = st.get("error") if state == "failed" else None
    if isinstance(err, dict):
        lines.append(f"error: {err.get('error_kind', 'error')}: {err.get('message', '')}")
        if err.get("hint"):
            lines.append(f"hint: {err['hint']}")
    elif state == "failed" and st.get("exit_reason"):
        lines.append(f"error: {st['exit_reason']}")
    lines.append(f"folder: {run}")
    return f"sage-ft-tui: {run.name} {state}", "\n".join(lines)


def send(run: Path, urls: list[str], log: Callable[[str], None], timeout: float = SEND_TIMEOUT_S) -> None:
    """Notify every URL of how the run ended; never raises, never waits past `timeout`."""
    if not urls:
        return
    if not have_apprise():
        log(MISSING)
        return
    try:
        title, body = summary(run)
    except Exception as e:  # noqa: BLE001 - a notifier never harms the run
        title, body = f"sage-ft-tui: {run.name}", f"run {run.name} ended ({type(e).__name__} reading its summary)"

    def one(url: str) -> None:
        import apprise

        shown = scheme(url) + "://…"
        try:
            a = apprise.Apprise()
            if not a.add(url):
                log(f"notify: cannot read the {shown} URL; not sent")
                return
            shown = next(iter(a)).url(privacy=True)
            ok = a.notify(title=title, body=body)
            log(f"notify: {'sent to' if ok else 'failed to reach'} {shown}")
        except Exception as e:  # noqa: BLE001
            log(f"notify: failed to reach {shown}: {type(e).__name__}")

    threads = [threading.Thread(target=one, args=(u,), daemon=True, name="notify") for u in urls]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    late = sum(t.is_alive() for t in threads)
    if late:
        log(f"notify: {late} notification(s) still unanswered after {timeout:.0f}s; given up")
