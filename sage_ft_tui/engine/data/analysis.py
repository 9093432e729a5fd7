"""ONE analysis of a task's data, used by the wizard's preview (inspect.inspect_data,
which presents it) and by run creation (prepare.prepare_run_data, which writes it): the
same reading, format detection, normalising, chat-template refusals and warnings, per-task
records (per_task.py), truncation and no-trained-token findings. The only knob between
the two is how many rows are measured in tokens (`AnalysisOptions.sample`), passed in.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Optional

from sage_ft_tui.engine.data.findings import Finding
from sage_ft_tui.engine.data.load import LoadedData, load_training_data
from sage_ft_tui.engine.data.options import LoadOptions
from sage_ft_tui.engine.data.per_task import MeasureOptions, task_data
from sage_ft_tui.engine.data.template_checks import template_refusals, template_warnings
from sage_ft_tui.engine.data.truncation import (
    Truncation,
    no_trained_finding,
    refuse_no_trained,
    truncation_findings,
)
from sage_ft_tui.engine.errors import SageError

STATS_SAMPLE = 20000  # rows measured in tokens at most (a seeded sample past it)


@dataclass(frozen=True)
class AnalysisOptions:
    load: LoadOptions
    model: str  # the model's name, for messages
    model_dir: Any  # its folder (image token counts)
    max_length: int
    mask_reasoning: bool = False
    preference_method: Optional[str] = None
    sample: Optional[int] = STATS_SAMPLE  # rows measured in tokens; None: every row
    cfg: Any = None  # a RunConfig: the suggested max lengths priced in memory


@dataclass
class DataAnalysis:
    loaded: LoadedData  # usable records, less those with no trained token
    usable: int  # usable rows (before rows with no trained token were dropped)
    findings: list[Finding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # the chat template's
    truncation: Truncation = field(default_factory=Truncation)
    truncation_report: dict = field(default_factory=dict)  # Truncation.as_dict() (+ memory)
    trained: int = 0  # trained tokens in the measured rows
    sampled: bool = False  # fewer rows measured than there are
    dropped: int = 0  # rows with no trained token within max length (dropped)
    extra: dict = field(default_factory=dict)  # the code task's `code_scan` report section


def sample_indices(n: int, limit: Optional[int]) -> list[int]:
    """The rows measured: all of them up to `limit`, else a seeded sample (in order)."""
    if limit is None or n <= limit:
        return list(range(n))
    return sorted(random.Random(0).sample(range(n), limit))


def refuse_without_template(tok, opts: AnalysisOptions) -> None:
    if task_data(opts.load.task).needs_template and not tok.has_template:
        raise SageError(
            f"model {opts.model} has no chat template, which the {opts.load.task} task needs",
            hint="use an instruct/chat model, or the instruction or text task",
            kind="model",
        )


def analyse_data(paths, tok, opts: AnalysisOptions) -> DataAnalysis:
    """Read and check the data, then measure it with the model's tokenizer `tok`.

    A task whose records come from elsewhere (the code task's repository scan, from
    `opts.cfg`) gives them and its report section instead of `paths`. Raises SageError for
    data that cannot train: unreadable, too many bad rows, a template that refuses too
    many, no row with a trained token left."""
    kind = task_data(opts.load.task)
    refuse_without_template(tok, opts)
    if kind.source is not None:
        loaded, extra = kind.source(opts.cfg, tok)
    else:
        loaded, extra = load_training_data(paths, opts.load), {}
    loaded = template_refusals(tok, loaded, opts.load.max_bad_share)  # rows the template refuses: bad rows
    kind.check(loaded.format, opts.preference_method)
    out = DataAnalysis(loaded, len(loaded.records), list(loaded.findings), extra=extra)
    idx = sample_indices(len(loaded.records), opts.sample)
    out.sampled = len(idx) < len(loaded.records)
    sample = [loaded.records[i] for i in idx]
    measure = MeasureOptions(opts.max_length, opts.model_dir, opts.mask_reasoning)
    m = kind.measure(tok, sample, measure)
    out.truncation, out.trained = m.truncation, m.trained
    out.warnings = template_warnings(tok, sample, opts.model)
    if m.truncation.no_trained:
        first = loaded.wheres[idx[m.truncation.no_trained[0]]]
        if len(m.truncation.no_trained) == len(sample):
            raise refuse_no_trained(m.truncation, first)
        drop = {idx[j] for j in m.truncation.no_trained}
        loaded.keep([i for i in range(len(loaded.records)) if i not in drop])
        out.dropped = len(drop)
        out.findings.append(no_trained_finding(out.dropped, first, opts.max_length))
    found, out.truncation_report = truncation_findings(m.truncation, opts.cfg)
    out.findings += found
    return out
