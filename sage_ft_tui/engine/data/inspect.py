"""The wizard's Data step: the one data analysis (analysis.py) presented — counts, bad
rows, findings, token lengths and a few rows previewed as the model sees them — and the
CLI's short block of the same findings from data_report.json (`summary_lines`).

Run creation writes the same analysis (prepare.prepare_run_data); only the number of rows
measured in tokens may differ (`sample`), so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from sage_ft_tui.engine.data.analysis import STATS_SAMPLE, AnalysisOptions, DataAnalysis, analyse_data
from sage_ft_tui.engine.data.findings import Finding, error_finding
from sage_ft_tui.engine.data.images import ImageRef
from sage_ft_tui.engine.data.load import REPORT_LIST_LIMIT, load_training_data
from sage_ft_tui.engine.data.loaded import LoadedData
from sage_ft_tui.engine.data.options import LoadOptions
from sage_ft_tui.engine.data.per_task import task_data
from sage_ft_tui.engine.data.template import chat_tokenizer
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.fsutil import fmt_bytes
from sage_ft_tui.engine.models.family import is_vision
from sage_ft_tui.engine.models.resolve import model_dir
from sage_ft_tui.engine.models.tiny import TINY_NAME

SKIPPED_SHOWN = 3  # bad rows named in the CLI's data block (all of them are in data_report.json)


# ---- the short block ---------------------------------------------------------------


def summary_lines(report: dict) -> list[str]:
    """The inspector's block for the CLI, from data_report.json."""
    ins = report.get("inspection") or {}
    lines = []
    tr = ins.get("truncation") or {}
    if tr.get("samples"):

        def mem(key: str) -> str:
            m = tr.get(f"{key}_memory")
            return f" (~{fmt_bytes(m)})" if m else ""

        lines.append(
            f"  length   at max length {tr['max_length']}: {tr['share_cut']:.0%} of samples cut, "
            f"{tr['share_eos_lost']:.0%} of answers lose their EOS; whole: 95% at {tr['keep_95']}{mem('keep_95')}, "
            f"99% at {tr['keep_99']}{mem('keep_99')}"
        )
    per_file = report.get("per_file") or []
    if len(per_file) > 1:  # a folder or several files: what each one held
        for pf in per_file:
            lines.append(
                f"  file     {pf.get('file')}: {pf.get('format') or '?'}, {pf.get('rows', 0)} rows, "
                f"{pf.get('bad', 0)} bad, {pf.get('usable', 0)} usable"
            )
    skipped = report.get("skipped") or []
    n_bad = (report.get("counts") or {}).get("skipped", len(skipped))
    if n_bad:
        listed = "; ".join(f"{b.get('where')}: {b.get('reason')}" for b in skipped[:SKIPPED_SHOWN])
        more = f"; … {n_bad - SKIPPED_SHOWN} more" if n_bad > SKIPPED_SHOWN else ""
        lines.append(
            f"warning: {n_bad} bad {'row' if n_bad == 1 else 'rows'} skipped: {listed}{more} (all of them in the run's data report)"
        )
    for w in report.get("warnings") or []:  # the chat template's (tools/reasoning rendered as text)
        lines.append(f"warning: {w}")
    for f in ins.get("findings") or []:
        at = f" ({f['where']})" if f.get("where") else ""
        lines.append(f"{f['severity']}: {f['message']}{at}" + (f" — {f['hint']}" if f.get("hint") else ""))
    return lines


# ---- the wizard's inspection ---------------------------------------------------------


@dataclass
class DataInspection:
    format: Optional[str] = None
    rows: int = 0
    usable: int = 0
    bad_rows: list[tuple[str, str]] = field(default_factory=list)
    token_lengths: list[int] = field(default_factory=list)
    share_truncated: float = 0.0
    preview: list[list[tuple[str, bool]]] = field(default_factory=list)
    # per previewed row (same order as preview): its images, checked, with their sizes
    images: list[list[ImageRef]] = field(default_factory=list)
    # preference/GRPO rows: {"prompt", "chosen", "rejected"} or {"prompt", "completion", "label"} or {"prompt", "answer"}
    pairs: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    bad: int = 0  # bad rows (rows = usable + bad; bad_rows lists the first REPORT_LIST_LIMIT)
    per_file: dict[str, dict] = field(default_factory=dict)  # file → {format, rows, bad, usable}
    error: Optional[SageError] = None
    findings: list[Finding] = field(default_factory=list)  # errors and warnings, each with where and hint
    truncation: dict = field(default_factory=dict)  # Truncation.as_dict() (+ memory), as in data_report.json
    dropped: int = 0  # rows with no trained token within max length (run creation drops them)

    @property
    def ok(self) -> bool:
        return self.error is None and self.usable > 0


def inspect_data(
    paths,
    task: str = "instruction",
    fmt: str = "auto",
    model: str = TINY_NAME,
    max_length: int = 2048,
    preview: int = 5,
    max_bad_share: float = 0.05,
    field_map: Optional[dict] = None,
    replace: Optional[dict] = None,
    allow_secrets: bool = False,
    cfg=None,
    sample: Optional[int] = STATS_SAMPLE,
) -> DataInspection:
    """The data analysis of `paths` for the wizard; never raises for bad data (see .error
    and .findings). `cfg` (a RunConfig) prices the suggested max lengths in memory;
    `sample`: the rows measured in tokens at most (None: all)."""
    try:
        mdir = model_dir(model)
    except SageError:
        mdir = None  # a model not found here: its own error comes with the tokenizer below
    opts = AnalysisOptions(
        LoadOptions(
            task=task,
            fmt=fmt,
            field_map=field_map,
            replace=replace,
            allow_secrets=allow_secrets,
            max_bad_share=max_bad_share,
            max_length=max_length,
            text_model="" if mdir is None or is_vision(mdir) else model,
        ),
        model=model,
        model_dir=mdir,
        max_length=max_length,
        sample=sample,
        cfg=cfg,
    )
    out = DataInspection()
    try:
        tok = chat_tokenizer(str(mdir if mdir is not None else model_dir(model)))
        a = analyse_data(paths, tok, opts)
    except SageError as e:
        out.error = e
        out.findings.append(error_finding(e))
        _counts_despite(out, paths, opts.load)
        return out
    _present(out, a)
    kind = task_data(task)
    for rec in a.loaded.records[:preview]:
        p = kind.preview(tok, rec)
        out.preview.append(p.segments)
        out.images.append(p.images)
        if p.pair is not None:
            out.pairs.append(p.pair)
    return out


def _present(out: DataInspection, a: DataAnalysis) -> None:
    _counts(out, a.loaded)
    out.usable = a.usable  # rows = usable + bad (rows with no trained token are a finding)
    out.dropped = a.dropped
    out.findings.extend(a.findings)
    out.warnings = a.warnings
    out.token_lengths = a.truncation.lengths
    lengths, max_len = a.truncation.lengths, a.truncation.max_length
    out.share_truncated = round(sum(1 for n in lengths if n > max_len) / max(1, len(lengths)), 4)
    out.truncation = a.truncation_report


def _counts(out: DataInspection, loaded: LoadedData) -> None:
    out.format, out.rows, out.files = loaded.format, loaded.total_rows, loaded.files
    out.usable, out.bad, out.per_file = len(loaded.records), len(loaded.bad), loaded.per_file
    out.bad_rows = [(b.where, b.reason) for b in loaded.bad[:REPORT_LIST_LIMIT]]


def _counts_despite(out: DataInspection, paths, load: LoadOptions) -> None:
    """After a refusal, still list what is wrong, row by row: the same counts as the error
    line (rows = usable + bad; the refusal is the error, not the counts)."""
    try:
        _counts(out, load_training_data(paths, load, max_bad_share=1.0))
    except SageError:
        pass
