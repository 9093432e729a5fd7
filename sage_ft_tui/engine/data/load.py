"""Reading a task's data: files → checked, normalised records with file:line for every
row (readers.py reads, row_checks.py checks the raw rows, formats.py detects and
normalises, per_task.py turns a row into the task's record). Bad rows are kept with
file:line and reason; too many stop it, and so does a file with no usable row.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional

from sage_ft_tui.engine.data.findings import Finding
from sage_ft_tui.engine.data.formats import FORMATS, RowError, apply_field_map, detect_format
from sage_ft_tui.engine.data.images import ImageError
from sage_ft_tui.engine.data.loaded import LoadedData
from sage_ft_tui.engine.data.options import LoadOptions
from sage_ft_tui.engine.data.per_task import task_data
from sage_ft_tui.engine.data.readers import ReadResult, read_files
from sage_ft_tui.engine.data.row_checks import check_rows
from sage_ft_tui.engine.data.rows import BadRow, Row, shown
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.methods.registry import check_task_format

HEAD_ROWS = 200  # rows of a file read to tell its format
REPORT_LIST_LIMIT = 200  # bad rows listed in data_report.json and the Data step (all are counted)


def _no_rows_error(where: str, bad: list[BadRow], fmt: Optional[str] = None) -> SageError:
    if not bad:
        return SageError(f"{where}: no rows", hint="the data file is empty; add examples (or remove it)", kind="data")
    as_fmt = f" as {fmt}" if fmt else ""
    return SageError(
        f"{where}: no usable rows{as_fmt} ({len(bad)} bad; first: {bad[0]})",
        hint="fix the rows, or set data.format / data.field_map to match your columns"
        if fmt
        else "fix the file; every row failed to read",
        kind="data",
    )


def _detect(where: str, rows: list[Row]) -> str:
    fmt, _ = detect_format(rows)
    if fmt is None:
        first = rows[0] if rows else None
        keys = (
            [shown(k, 40) for k in sorted(map(str, first.data))[:8]]
            if first is not None and isinstance(first.data, dict)
            else []
        )
        sample = f" (first row has keys {keys})" if keys else ""
        raise SageError(
            f"{where}: cannot tell the data format{sample}",
            hint="use alpaca/qa/sharegpt/messages/prompt_completion/text fields, or map yours with --set data.field_map.instruction=<col>",
            kind="data",
        )
    return fmt


def _frozen(obj: Any) -> Any:
    """A hashable copy of a record that is equal exactly when the records are (key order aside)."""
    if isinstance(obj, dict):
        return tuple(sorted([(k, v if type(v) is str else _frozen(v)) for k, v in obj.items()]))
    if isinstance(obj, list):
        return tuple([v if type(v) is str else _frozen(v) for v in obj])
    return obj


def _bucket(rec: dict) -> int:
    """Equal for equal records, cheap to compute: the hash of a conversation's texts (the
    frozen record for anything else). Records in one bucket are then compared exactly."""
    msgs = rec.get("messages")
    if type(msgs) is list:
        return hash(tuple([m.get("content") if type(m) is dict else repr(m) for m in msgs]))
    return hash(_frozen(rec))


@dataclass
class Duplicates:
    groups: list[int]  # for each record, the index of the first record equal to it
    count: int = 0
    first_where: str = ""  # "<where> repeats <where>" of the first copy
    across_files: bool = False


def find_duplicates(records: list[dict], wheres: list[str]) -> Duplicates:
    """Exact duplicates among the normalised records: bucketed by `_bucket` (no JSON text,
    no digest), and duplicates only when the records compare equal (key order aside)."""
    first_of: dict[int, int] = {}  # bucket → the first record in it
    in_shared: dict[Any, int] = {}  # frozen record → first index, for records that share a bucket with another
    out = Duplicates([])
    for i, rec in enumerate(records):
        first = first_of.setdefault(_bucket(rec), i)
        if first != i and records[first] != rec:  # the same bucket, another record: tell them apart exactly
            first = in_shared.setdefault(_frozen(rec), i)
        if first == i:
            out.groups.append(i)
            continue
        out.groups.append(first)
        out.count += 1
        w, was = wheres[i], wheres[first]
        out.first_where = out.first_where or f"{w} repeats {was}"
        out.across_files = out.across_files or was.rsplit(":", 1)[0].split("[")[0] != w.rsplit(":", 1)[0].split("[")[0]
    return out


def check_field_map(rows: list[Row], field_map: dict, files: list[str]) -> None:
    """Refuse a data.field_map entry naming a column no row has (it would be ignored)."""
    if not field_map:
        return
    keys: set = set()
    for r in rows:
        if isinstance(r.data, dict):
            keys.update(r.data)
    for ours, theirs in field_map.items():
        if theirs in keys:
            continue
        present = sorted(map(str, keys))
        columns = ", ".join(shown(k, 40) for k in present[:12]) + (
            f" … ({len(present)} in all)" if len(present) > 12 else ""
        )
        where = files[0] if len(files) == 1 else f"{len(files)} files"
        raise SageError(
            f"data.field_map.{shown(ours, 40)} names column {shown(theirs, 40)!r}, which {where} does not have "
            f"(columns: {columns or 'none'})",
            hint=f"set data.field_map.{shown(ours, 40)} to one of those columns (names are case-sensitive), or remove it",
            kind="data",
        )


def label_findings(records: list[dict], wheres: list[str]) -> list[Finding]:
    """KTO rows (a true/false label) of one label only: a warning with the counts."""
    labels = [r["label"] for r in records if isinstance(r, dict) and "label" in r]
    if not labels:
        return []
    good = sum(1 for x in labels if x)
    bad_n = len(labels) - good
    if good and bad_n:
        return []
    which, missing = ("desirable (label true)", "false") if good else ("undesirable (label false)", "true")
    return [
        Finding(
            "kto_one_label",
            "warning",
            f"all {len(labels)} rows are {which}: KTO has no "
            + ("bad answer to move away from" if good else "good answer to move towards"),
            wheres[0] if wheres else "",
            f"add rows with label {missing} (KTO learns from the contrast of good and bad answers)",
        )
    ]


def file_summaries(files: list[str], formats: dict[str, str], bad: list[BadRow], usable: dict[str, int]) -> dict:
    """Per file: its format, its rows, the bad ones and the usable ones (rows = usable + bad)."""
    out: dict[str, dict] = {}
    for f in files:
        nbad = sum(1 for b in bad if b.file == f)
        out[f] = {"format": formats.get(f), "rows": usable.get(f, 0) + nbad, "bad": nbad, "usable": usable.get(f, 0)}
    return out


def load_training_data(paths, options: Optional[LoadOptions] = None, **overrides: Any) -> LoadedData:
    """Read, inspect, detect (each file on its own), normalise. Bad rows are kept with
    file:line and reason; too many stop it, and so does a file with no usable row.

    `options` (LoadOptions) or its fields as keywords (the legacy API's
    `load_training_data(path, task="chat")`). The row checks run first
    (row_checks.check_rows): multimodal or preference data is refused, rows with secrets are
    bad rows, placeholders are filled or warned. With `max_length` (tokens), a conversation
    row so long that truncation would keep only a sliver of it is a bad row (per_task.py)."""
    opts = replace(options or LoadOptions(), **overrides)
    if isinstance(paths, (str, os.PathLike)):
        paths = [str(paths)]
    if not paths:
        raise SageError("no data files given", hint="pass --data FILE", kind="data")
    res = read_files([str(p) for p in paths])
    check_field_map(res.rows, opts.field_map or {}, res.files)
    rows = [Row(r.where, apply_field_map(r.data, opts.field_map or {}), r.file) for r in res.rows]
    total = len(rows) + len(res.bad)
    where = res.files[0] if len(res.files) == 1 else f"{len(res.files)} files"
    if total == 0:
        raise _no_rows_error(where, [])
    if opts.fmt != "auto" and opts.fmt not in FORMATS:
        raise SageError(f"unknown data format {opts.fmt!r}", hint=f"choose one of: auto, {', '.join(FORMATS)}")
    if opts.fmt == "auto":
        _check_heads(rows, res, where, opts)
    checks = check_rows(
        rows, opts.task, replace=opts.replace, allow_secrets=opts.allow_secrets, text_model=opts.text_model
    )
    out = LoadedData([], "", res.files, list(res.bad) + checks.bad, total, findings=list(checks.findings))
    if res.same_file_twice:
        out.findings.append(
            Finding(
                "same_file_twice",
                "warning",
                f"{res.same_file_twice[0]} was given more than once; it is read once",
                "",
                "give each data file once",
            )
        )
    by_file: dict[str, list[Row]] = {f: [] for f in res.files}
    for r in checks.rows:
        by_file.setdefault(r.file, []).append(r)
    usable = {
        f: _normalise_file(f, frows, f if len(res.files) > 1 else where, opts, out) for f, frows in by_file.items()
    }
    share = len(out.bad) / total
    if share > opts.max_bad_share:
        raise SageError(
            f"{where}: {len(out.bad)} of {total} rows are bad ({share:.0%}); first: {out.bad[0]}",
            hint=f"fix them, or raise data.max_bad_share (now {opts.max_bad_share:.0%}) to skip them",
            kind="data",
        )
    if opts.max_samples and len(out.records) > opts.max_samples:
        out.over_max_samples = len(out.records) - opts.max_samples
        out.keep(list(range(opts.max_samples)))
    out.per_file = file_summaries(res.files, out.formats, out.bad, usable)
    _dataset_findings(out)
    fmts = list(dict.fromkeys(out.formats.values()))
    out.format = fmts[0] if len(fmts) == 1 else "+".join(fmts)
    return out


def _check_heads(rows: list[Row], res: ReadResult, where: str, opts: LoadOptions) -> None:
    """A file of no known format fails before the (per-row) checks read all of it; its
    first rows are still checked, so preference or image data is named as such."""
    heads: dict[str, list[Row]] = {}
    for r in rows:
        if len(heads.setdefault(r.file, [])) < HEAD_ROWS:
            heads[r.file].append(r)
    for f, head in heads.items():
        if detect_format(head)[0] is None:
            check_rows(
                head, opts.task, replace=opts.replace, allow_secrets=opts.allow_secrets, text_model=opts.text_model
            )
            _detect(f if len(res.files) > 1 else where, head)


def _normalise_file(f: str, frows: list[Row], fwhere: str, opts: LoadOptions, out: LoadedData) -> int:
    """One file's rows → the task's records (appended to `out`); returns how many were usable."""
    if not frows:
        raise _no_rows_error(fwhere, [b for b in out.bad if b.file == f])
    ffmt = opts.fmt if opts.fmt != "auto" else _detect(fwhere, frows)
    try:
        check_task_format(opts.task, ffmt)
    except SageError as e:
        if len(out.files) > 1 and not e.where:
            e.where = f"{f} ({ffmt})"  # which file of the folder holds the other format
        raise
    out.formats[f] = ffmt
    record = task_data(opts.task).record
    n_before = len(out.records)
    for r in frows:
        try:
            rec = record(r, ffmt, opts)
        except (RowError, ImageError) as e:
            out.bad.append(BadRow(r.where, str(e), r.file))
            continue
        out.records.append(rec)
        out.wheres.append(r.where)
    if len(out.records) == n_before:
        raise _no_rows_error(fwhere, [b for b in out.bad if b.file == f], ffmt)
    return len(out.records) - n_before


def _dataset_findings(out: LoadedData) -> None:
    """Findings about the rows together: KTO labels of one kind, files of different
    formats, exact duplicates (their groups kept so the split keeps copies together)."""
    out.findings += label_findings(out.records, out.wheres)
    if len(out.files) > 1 and len(set(out.formats.values())) > 1:
        out.findings.append(
            Finding(
                "mixed_formats",
                "warning",
                "the files hold different formats: "
                + "; ".join(f"{Path(f).name}: {s['format']} ({s['usable']} rows)" for f, s in out.per_file.items()),
                "",
                "check each file is the data you meant (data_report.json lists them)",
            )
        )
    dup = find_duplicates(out.records, out.wheres)
    if dup.count:
        out.findings.append(
            Finding(
                "duplicates",
                "warning",
                f"{dup.count} rows are exact duplicates of earlier rows{' (across files)' if dup.across_files else ''}; "
                "they train more than once, and stay on one side of the train/eval split",
                dup.first_where,
                "remove the copies if they are not meant to weigh more",
            )
        )
        out.groups, out.duplicates = dup.groups, dup.count
