"""Step 1, Task: what the model should learn, and the data shape each task expects."""

from __future__ import annotations

import json

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from sage_ft_tui.engine.errors import cut_middle
from sage_ft_tui.engine.methods.registry import all_tasks
from sage_ft_tui.tui.screens.base import WizardScreen
from sage_ft_tui.tui.widgets.charts import S

NAME_COLUMN = 12  # the task's name, then its title


def task_label(name: str, title: str, width: int) -> Text:
    """One row of the list on one line: the title cut in the middle when the list is narrow
    (an OptionList wraps a long prompt onto a second line otherwise)."""
    label = Text(no_wrap=True)
    label.append(f"{name:<{NAME_COLUMN}}", style="bold")
    label.append(cut_middle(title, max(8, width - NAME_COLUMN)))
    return label


def _available(name: str) -> bool:
    if name != "code":
        return True
    import importlib.util

    return importlib.util.find_spec("sage_ft_tui.engine.data.code.scan") is not None


class TaskScreen(WizardScreen):
    STEP = "Task"

    def compose(self) -> ComposeResult:
        yield from self.compose_head()
        with Horizontal(classes="body"):
            with Vertical(id="task-box", classes="panel") as v:
                v.border_title = "What should the model learn?"
                opts = []
                for name, t in all_tasks().items():
                    opts.append(Option(task_label(name, t.title, 80), id=name, disabled=not _available(name)))
                yield OptionList(*opts, id="task-list")
            with Vertical(id="task-detail-box", classes="panel") as v:
                v.border_title = "Data it expects"
                yield Static(id="task-detail")
        yield from self.footer()

    def on_mount(self) -> None:
        ol = self.query_one(OptionList)
        names = list(all_tasks())
        if self.app.state.task in names:
            ol.highlighted = names.index(self.app.state.task)
        else:
            ol.highlighted = names.index("instruction")
        ol.focus()
        self._describe(names[ol.highlighted or 0])

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit_titles)

    def _fit_titles(self) -> None:
        ol = self.query_one(OptionList)
        width = ol.scrollable_content_region.width
        if width <= 0:
            return
        for name, t in all_tasks().items():
            ol.replace_option_prompt(name, task_label(name, t.title, width))

    def _describe(self, name: str) -> None:
        t = all_tasks()[name]
        out = Text()
        out.append(f"{t.title}\n", style="bold")
        out.append(f"{t.description}\n\n")
        out.append("Shape of one row\n", style="bold dim")
        out.append(f"{t.shape}\n\n", style=S("$accent"))
        out.append("Example\n", style="bold dim")
        out.append(json.dumps(t.example, ensure_ascii=False, indent=1), style=S("$success"))
        if not _available(name):
            out.append("\n\nNot available yet in this version.", style=S("bold $warning"))
        self.query_one("#task-detail", Static).update(out)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id:
            self._describe(event.option.id)
        self.validity_changed()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.action_next()

    def _chosen(self) -> str | None:
        ol = self.query_one(OptionList)
        if ol.highlighted is None:
            return None
        opt = ol.get_option_at_index(ol.highlighted)
        return None if opt.disabled else opt.id

    def valid(self) -> bool:
        return self._chosen() is not None

    def commit(self) -> None:
        task = self._chosen()
        if task != self.app.state.task:
            self.app.state.inspection = None  # the same file may not fit another task
        self.app.state.task = task
