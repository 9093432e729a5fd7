"""Where `app.open(route, run)` goes: the run screens and the after-training screens.

One table; a screen opens another by route name and never imports it. The eval/export
screens add their routes here.
"""

from __future__ import annotations

from typing import Callable, Optional

from textual.screen import Screen

RouteFactory = Callable[[Optional[str]], Screen]


def _monitor(run: Optional[str]) -> Screen:
    from sage_ft_tui.tui.screens.monitor import MonitorScreen

    if run is None:
        raise ValueError("the monitor needs a run")
    return MonitorScreen(run)


def _runs(run: Optional[str]) -> Screen:
    from sage_ft_tui.tui.screens.runs import RunsScreen

    return RunsScreen(selected=run)


def _merge(run: Optional[str]) -> Screen:
    from sage_ft_tui.tui.screens.deploy.merge import MergeScreen

    return MergeScreen(run)


def _serve(run: Optional[str]) -> Screen:
    from sage_ft_tui.tui.screens.deploy.serve import ServeScreen

    return ServeScreen(run)


def _chat(run: Optional[str]) -> Screen:
    from sage_ft_tui.tui.screens.deploy.chat import ChatScreen

    return ChatScreen(run)


def _eval(run: Optional[str]) -> Screen:
    from sage_ft_tui.tui.screens.deploy.evaluate import EvaluateScreen

    return EvaluateScreen(run)


def _compare(runs: Optional[str]) -> Screen:
    """`runs`: two or more run folders joined by screens.compare.RUN_SEPARATOR."""
    from sage_ft_tui.tui.screens.compare import CompareScreen

    return CompareScreen(runs)


def _export(run: Optional[str]) -> Screen:
    from sage_ft_tui.tui.screens.deploy.export import ExportScreen

    return ExportScreen(run)


def _queue(run: Optional[str]) -> Screen:
    from sage_ft_tui.tui.screens.queue import QueueScreen

    return QueueScreen(selected=run)


def _sweep(ref: Optional[str]) -> Screen:
    """`ref`: a sweep trial's run folder, a sweep's name, or None (the newest sweep)."""
    from sage_ft_tui.tui.screens.sweep import SweepScreen

    return SweepScreen(ref)


# route -> (factory, title, one-line description for menus and the command palette)
ROUTES: dict[str, tuple[RouteFactory, str, str]] = {
    "monitor": (_monitor, "Attach", "live progress of a run"),
    "runs": (_runs, "Runs", "all runs; act on any"),
    "queue": (_queue, "Queue", "runs waiting their turn for a GPU"),
    "merge": (_merge, "Merge", "adapter into base model"),
    "serve": (_serve, "Serve", "OpenAI API on 127.0.0.1"),
    "chat": (_chat, "Chat", "talk to a served model"),
    "eval": (_eval, "Evaluate", "base vs tuned on held-out answers"),
    "compare": (_compare, "Compare", "runs' curves and scores side by side"),
    "export": (_export, "Export", "GGUF for llama.cpp / Ollama, or HF"),
    "sweep": (_sweep, "Sweep", "a hyperparameter search's trials, ranked"),
}
# The after-training routes, in the order menus show them.
AFTER_TRAINING: tuple[str, ...] = ("merge", "serve", "chat", "eval", "export")
