"""Command palette entries beyond the current screen's keys: Quickstart per task, the
after-training screens, and per-run commands ("attach ‹run›", "merge ‹run›", …)."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any, Callable

from textual.command import DiscoveryHit, Hit, Hits, Provider

from sage_ft_tui.engine.methods.registry import all_tasks
from sage_ft_tui.tui.routes import AFTER_TRAINING, ROUTES

PER_RUN = ("monitor",) + AFTER_TRAINING + ("runs",)  # what one run can be opened in
MAX_RUNS = 20


class RunCommands(Provider):
    """Quickstart, New fine-tune, Merge / Serve / Chat, and the same for each recent run."""

    async def startup(self) -> None:
        from sage_ft_tui.engine.runs.state import list_runs

        try:
            runs = await asyncio.to_thread(list_runs)
        except Exception:  # a broken run folder must not break the palette
            runs = []
        self.runs = [r.path for r in runs[:MAX_RUNS]]

    def commands(self) -> list[tuple[str, str, Callable[[], Any]]]:
        app: Any = self.app
        out: list[tuple[str, str, Callable[[], Any]]] = [
            ("New fine-tune", "the wizard, step by step", app.start_wizard)
        ]
        for name, task in all_tasks().items():
            out.append((f"Quickstart {name}", task.title, partial(app.start_wizard, quick_task=name)))
        for route in AFTER_TRAINING + ("runs",):
            _f, title, desc = ROUTES[route]
            out.append((title, f"{desc} (newest fitting run)", partial(app.open, route, None)))
        for path in getattr(self, "runs", []):
            name = path.rsplit("/", 1)[-1]
            for route in PER_RUN:
                verb = ROUTES[route][1].lower() if route != "runs" else "select"
                out.append((f"{verb} {name}", f"{ROUTES[route][2]}", partial(app.open, route, path)))
        return out

    async def discover(self) -> Hits:
        for title, help_text, run in self.commands()[: 6 + len(all_tasks())]:
            yield DiscoveryHit(title, run, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, run in self.commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), run, text=title, help=help_text)
