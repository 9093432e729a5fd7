"""A run's data folder: the one data analysis (analysis.py) written as
<run>/data/{train,eval}.jsonl and data_report.json. The wizard's preview of the same
analysis is inspect.inspect_data; the trainer's tokenized view is trainer_data.py.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from sage_ft_tui.engine.data.analysis import AnalysisOptions, DataAnalysis, analyse_data
from sage_ft_tui.engine.data.findings import Finding
from sage_ft_tui.engine.data.load import REPORT_LIST_LIMIT, load_training_data
from sage_ft_tui.engine.data.options import LoadOptions
from sage_ft_tui.engine.data.per_task import task_data
from sage_ft_tui.engine.data.rows import BadRow
from sage_ft_tui.engine.data.split import split, split_note
from sage_ft_tui.engine.data.template import chat_tokenizer
from sage_ft_tui.engine.fsutil import atomic_write_json
from sage_ft_tui.engine.models.family import is_vision
from sage_ft_tui.engine.models.resolve import model_dir
from sage_ft_tui.engine.runs.layout import RunLayout


def run_analysis_options(cfg, mdir) -> AnalysisOptions:
    """The analysis a run's config asks for (every run; the wizard's preview asks the same)."""
    return AnalysisOptions(
        LoadOptions.for_run(cfg, text_model="" if is_vision(mdir) else cfg.model.name),
        model=cfg.model.name,
        model_dir=mdir,
        max_length=cfg.training.max_length,
        mask_reasoning=cfg.data.reasoning == "mask",
        preference_method=cfg.preference.method,
        cfg=cfg,
    )


def prepare_run_data(cfg, run: Path) -> dict:
    """Write <run>/data/{train,eval}.jsonl and data_report.json; return the report.

    The data analysis runs here (so before every run): rows with no trained token left at
    max_length are dropped, and none left refuses."""
    lay = RunLayout(run)
    lay.data.mkdir(parents=True, exist_ok=True)
    mdir = model_dir(cfg.model.name, revision=cfg.model.revision)
    tok = chat_tokenizer(str(mdir)).with_tool_format(cfg.data.tool_format)
    opts = run_analysis_options(cfg, mdir)
    a = analyse_data(cfg.data.paths, tok, opts)
    loaded = a.loaded
    findings = a.findings + task_data(cfg.task).run_checks(cfg, tok, loaded)
    train, evald = split(loaded.records, cfg.data.validation_split, cfg.training.seed, loaded.groups)
    units = len(dict.fromkeys(loaded.groups)) if loaded.groups is not None else len(loaded.records)
    note = split_note(cfg.data.validation_split, units, len(evald), bool(cfg.data.eval_paths))
    if cfg.data.eval_paths:
        ev = load_training_data(cfg.data.eval_paths, replace(opts.load, max_samples=None))
        evald = ev.records
        findings += ev.findings
    _write_jsonl(lay.train_data, train)
    _write_jsonl(lay.eval_data, evald)
    report = data_report(cfg, tok, a, findings) | {"split_note": note}
    report["counts"].update(train=len(train), eval=len(evald))
    atomic_write_json(lay.data_report, report)
    return report


def data_report(cfg, tok, a: DataAnalysis, findings: list[Finding]) -> dict:
    """data_report.json (its counts of train and eval rows are the caller's)."""
    loaded = a.loaded
    lengths = a.truncation.lengths
    return {
        "format": loaded.format,
        "formats": loaded.formats,
        "task": cfg.task,
        "files": loaded.files,
        "model": cfg.model.name,
        "template": tok.template_source,
        "warnings": a.warnings,
        "counts": {
            "rows": loaded.total_rows,
            "usable": a.usable,
            "train": 0,
            "eval": 0,
            "skipped": len(loaded.bad),
            "over_max_samples": loaded.over_max_samples,
            "dropped_no_trained_token": a.dropped,
            "duplicates": loaded.duplicates,
        },
        "per_file": [{"file": f, **c} for f, c in loaded.per_file.items()],
        "skipped": [{"where": b.where, "reason": b.reason} for b in loaded.bad[:REPORT_LIST_LIMIT]],
        "skipped_by_reason": _by_reason(loaded.bad),
        "tokens": token_stats(lengths, cfg.training.max_length)
        | {"trained_share": round(a.trained / max(1, sum(lengths)), 4)},
        "inspection": {
            "findings": [f.as_dict() for f in findings],
            "truncation": a.truncation_report,
            "sampled": a.sampled,
        },
        **a.extra,
    }


def _by_reason(bad: list[BadRow]) -> dict[str, int]:
    out: dict[str, int] = {}
    for b in bad:
        out[b.reason] = out.get(b.reason, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def _write_jsonl(path: Path, records: list[dict]) -> None:
    tmp = path.with_suffix(".jsonl.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def token_stats(lengths: list[int], max_length: int) -> dict:
    if not lengths:
        return {}
    s = sorted(lengths)
    pick = lambda q: s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]  # noqa: E731
    return {
        "min": s[0],
        "median": pick(0.5),
        "p95": pick(0.95),
        "max": s[-1],
        "mean": round(sum(s) / len(s), 1),
        "total": sum(s),
        "share_truncated": round(sum(1 for x in s if x > max_length) / len(s), 4),
        "max_length": max_length,
        "sampled": len(s),
    }
