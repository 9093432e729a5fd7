"""Data: load and validate files (readers.py reads, inspect.py checks, formats.py
normalises), write the run's prepared data and its report, tokenize (cached in the run
folder) for the trainer. The wizard's inspection is inspect.inspect_data.

Torch-free: `datasets` for the tokenized cache, `tokenizers` + Jinja for templates.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Hashable, Optional, Sequence

from sage_ft_tui.engine.data.formats import (
    FORMATS,
    RowError,
    apply_field_map,
    detect_format,
    normalize,
)
from sage_ft_tui.engine.data.images import ImageError, resolve_row_images
from sage_ft_tui.engine.data.inspect import (
    Finding,
    check_rows,
    no_trained_finding,
    refuse_no_trained,
    truncation,
    truncation_findings,
    truncation_of_lengths,
)
from sage_ft_tui.engine.data.preference import (
    encode_preference,
    normalize_for,
    prompt_text,
    sequence_lengths,
)
from sage_ft_tui.engine.data.readers import BadRow, Row, read_files, shown
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.fsutil import atomic_write_json
from sage_ft_tui.engine.methods.preference import pairs_only, unpairs
from sage_ft_tui.engine.methods.registry import check_task_format, trains_own_rows
from sage_ft_tui.engine.models.tiny import TINY_NAME
from sage_ft_tui.engine.runs.layout import RunLayout

REPORT_LIST_LIMIT = 200
ROW_CHARS_PER_TOKEN = 64  # a token is rarely over 10 characters: 64x max_length is far past any truncation
STATS_SAMPLE = 20000
# Below this many rows a worker pool costs more than it saves.
TOKENIZE_PARALLEL_MIN_ROWS = 20000


@dataclass
class LoadedData:
    records: list[dict]
    format: str
    files: list[str]
    bad: list[BadRow] = field(default_factory=list)
    total_rows: int = 0
    wheres: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    groups: Optional[list[int]] = (
        None  # when some rows are duplicates: each row's first copy (split keeps them together)
    )
    duplicates: int = 0
    formats: dict[str, str] = field(default_factory=dict)  # file → its detected format
    per_file: dict[str, dict] = field(default_factory=dict)  # file → {format, rows, bad, usable}
    over_max_samples: int = 0  # usable rows left out by data.max_samples


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


def _squashed(msgs: Any) -> Any:
    """A conversation with its whitespace runs made one space: what a whitespace-only edit leaves equal."""
    if not isinstance(msgs, list):
        return msgs
    return [
        (m.get("role"), " ".join(str(m.get("content") or "").split()), m.get("tool_calls"))
        if isinstance(m, dict)
        else m
        for m in msgs
    ]


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


def load_training_data(
    paths,
    *,
    task: str = "instruction",
    fmt: str = "auto",
    field_map: Optional[dict] = None,
    system_prompt: Optional[str] = None,
    max_bad_share: float = 0.05,
    max_samples: Optional[int] = None,
    max_length: Optional[int] = None,
    answer_field: str = "answer",
    replace: Optional[dict] = None,
    allow_secrets: bool = False,
    text_model: str = "",
) -> LoadedData:
    """Read, inspect, detect (each file on its own), normalise. Bad rows are kept with
    file:line and reason; too many stop it, and so does a file with no usable row.

    The inspector's row checks run first (inspect.check_rows): multimodal or preference
    data is refused, rows with secrets are bad rows, placeholders are filled or warned.
    With `max_length` (tokens), a conversation row so long that truncation would keep only
    a sliver of it (over ROW_CHARS_PER_TOKEN characters a token) is a bad row: tokenizing a
    multi-megabyte row takes minutes and trains on almost none of it. `text_model` names the
    run's model when it reads text only: image rows are then refused (images.py checks the
    images of the others)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [str(paths)]
    if not paths:
        raise SageError("no data files given", hint="pass --data FILE", kind="data")
    res = read_files([str(p) for p in paths])
    check_field_map(res.rows, field_map or {}, res.files)
    rows = [Row(r.where, apply_field_map(r.data, field_map or {}), r.file) for r in res.rows]
    total = len(rows) + len(res.bad)
    where = res.files[0] if len(res.files) == 1 else f"{len(res.files)} files"
    if total == 0:
        raise _no_rows_error(where, [])
    if fmt != "auto" and fmt not in FORMATS:
        raise SageError(f"unknown data format {fmt!r}", hint=f"choose one of: auto, {', '.join(FORMATS)}")
    if fmt == "auto":
        # A file of no known format fails before the (per-row) inspector reads all of it;
        # its first rows are still inspected, so preference or image data is named as such.
        heads: dict[str, list[Row]] = {}
        for r in rows:
            if len(heads.setdefault(r.file, [])) < 200:
                heads[r.file].append(r)
        for f, head in heads.items():
            if detect_format(head)[0] is None:
                check_rows(head, task, replace=replace, allow_secrets=allow_secrets, text_model=text_model)
                _detect(f if len(res.files) > 1 else where, head)
    checks = check_rows(rows, task, replace=replace, allow_secrets=allow_secrets, text_model=text_model)
    findings = list(checks.findings)
    if res.same_file_twice:
        findings.append(
            Finding(
                "same_file_twice",
                "warning",
                f"{res.same_file_twice[0]} was given more than once; it is read once",
                "",
                "give each data file once",
            )
        )
    bad = list(res.bad) + checks.bad
    by_file: dict[str, list[Row]] = {f: [] for f in res.files}
    for r in checks.rows:
        by_file.setdefault(r.file, []).append(r)
    records: list[dict] = []
    wheres: list[str] = []
    formats: dict[str, str] = {}
    usable: dict[str, int] = {}
    for f, frows in by_file.items():
        fwhere = f if len(res.files) > 1 else where
        fbad = [b for b in bad if b.file == f]
        if not frows:
            raise _no_rows_error(fwhere, fbad)
        ffmt = fmt if fmt != "auto" else _detect(fwhere, frows)
        try:
            check_task_format(task, ffmt)
        except SageError as e:
            if len(res.files) > 1 and not e.where:
                e.where = f"{f} ({ffmt})"  # which file of the folder holds the other format
            raise
        formats[f] = ffmt
        n_before = len(records)
        for r in frows:
            try:
                if trains_own_rows(task):
                    rec = normalize_for(task, ffmt, r.data, system_prompt, answer_field)
                else:
                    rec = normalize(r.data, ffmt, system_prompt)
                    if "messages" in rec:
                        resolve_row_images(rec, r.file)  # absolute paths, each image opened and checked
            except (RowError, ImageError) as e:
                bad.append(BadRow(r.where, str(e), r.file))
                continue
            if "chosen" in rec and _squashed(rec["chosen"]) == _squashed(rec["rejected"]):
                bad.append(
                    BadRow(r.where, "chosen and rejected differ only in whitespace: no preference to learn", r.file)
                )
                continue
            if max_length and "messages" in rec:
                n = sum(len(m.get("content") or "") for m in rec["messages"] if isinstance(m, dict))
                if n > max_length * ROW_CHARS_PER_TOKEN:
                    bad.append(
                        BadRow(
                            r.where,
                            f"row too long: {n:,} characters, more than {ROW_CHARS_PER_TOKEN} × "
                            f"training.max_length ({max_length} tokens); almost all of it would be cut",
                            r.file,
                        )
                    )
                    continue
            records.append(rec)
            wheres.append(r.where)
        if len(records) == n_before:
            raise _no_rows_error(fwhere, [b for b in bad if b.file == f], ffmt)
        usable[f] = len(records) - n_before
    share = len(bad) / total
    if share > max_bad_share:
        raise SageError(
            f"{where}: {len(bad)} of {total} rows are bad ({share:.0%}); first: {bad[0]}",
            hint=f"fix them, or raise data.max_bad_share (now {max_bad_share:.0%}) to skip them",
            kind="data",
        )
    over = 0
    if max_samples and len(records) > max_samples:
        over = len(records) - max_samples
        records, wheres = records[:max_samples], wheres[:max_samples]
    findings += label_findings(records, wheres)
    per_file = file_summaries(res.files, formats, bad, usable)
    if len(res.files) > 1 and len(set(formats.values())) > 1:
        findings.append(
            Finding(
                "mixed_formats",
                "warning",
                "the files hold different formats: "
                + "; ".join(f"{Path(f).name}: {s['format']} ({s['usable']} rows)" for f, s in per_file.items()),
                "",
                "check each file is the data you meant (data_report.json lists them)",
            )
        )
    dup = find_duplicates(records, wheres)
    if dup.count:
        findings.append(
            Finding(
                "duplicates",
                "warning",
                f"{dup.count} rows are exact duplicates of earlier rows{' (across files)' if dup.across_files else ''}; "
                "they train more than once, and stay on one side of the train/eval split",
                dup.first_where,
                "remove the copies if they are not meant to weigh more",
            )
        )
    fmts = list(dict.fromkeys(formats.values()))
    return LoadedData(
        records,
        fmts[0] if len(fmts) == 1 else "+".join(fmts),
        res.files,
        bad,
        total,
        wheres,
        findings,
        dup.groups if dup.count else None,
        dup.count,
        formats,
        per_file,
        over,
    )


AUTO_EVAL_SHARE = 0.05  # data.validation_split unset: this share is held out for evaluation ...
AUTO_EVAL_FROM = 60  # ... from this many rows (5% of 60 = 3 rows at least); fewer rows: none


def eval_share(share: Optional[float], units: int) -> float:
    """The share held out: the configured one, or (unset) AUTO_EVAL_SHARE from AUTO_EVAL_FROM
    rows on, else 0 (a tiny file trains on every row)."""
    if share is not None:
        return share
    return AUTO_EVAL_SHARE if units >= AUTO_EVAL_FROM else 0.0


def held_out(units: int, share: float) -> int:
    """How many rows (or groups) `split` holds out at this share."""
    return max(1, int(round(units * share))) if share > 0 and units >= 2 else 0


def split_note(share: Optional[float], units: int, n_eval: int, eval_files: bool = False) -> str:
    """One line on the default split, said once (data report, `start`): what was held out, or
    why nothing was. '' when the user chose the share or gave eval files."""
    if share is not None or eval_files:
        return ""
    if n_eval:
        return f"{n_eval} of {units} rows held out for evaluation (the default 5%; data.validation_split 0 = none)"
    return (
        f"nothing held out for evaluation: {units} rows are too few for the default 5% "
        f"(from {AUTO_EVAL_FROM} rows); Evaluate needs its own held-out file"
    )


def split(
    records: list[dict], share: Optional[float], seed: int, groups: Optional[Sequence[Hashable]] = None
) -> tuple[list[dict], list[dict]]:
    """Deterministic train/eval split (share None: `eval_share`'s default). With `groups`
    (e.g. the source file of each code piece) a group goes wholly to one side, so eval never
    sees pieces of a trained file."""
    keys = groups if groups is not None else list(range(len(records)))
    uniq = list(dict.fromkeys(keys))
    n_eval = held_out(len(uniq), eval_share(share, len(uniq)))
    if not n_eval:
        return records, []
    random.Random(seed).shuffle(uniq)
    ev = set(uniq[:n_eval])
    return [r for r, k in zip(records, keys) if k not in ev], [r for r, k in zip(records, keys) if k in ev]


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


def with_image_tokens(ids: list[int], mask: list[int], rec: dict, model_dir) -> tuple[list[int], list[int]]:
    """(ids, mask) counted as the model sees them: each image is as many tokens as its processor
    makes of it, not the one placeholder the text renderer writes (they lead, untrained; only
    lengths and the answers' positions are read from the result)."""
    if not rec.get("images"):
        return ids, mask
    from sage_ft_tui.engine.data.images import row_image_refs
    from sage_ft_tui.engine.models.vision import extra_image_tokens

    extra = extra_image_tokens(model_dir, [(r.width, r.height) for r in row_image_refs(rec)])
    return [-1] * extra + list(ids), [0] * extra + list(mask)


def encode_record(tok, rec: dict, mask_reasoning: bool = False):
    """One sequence for a record (previews, lengths): its last training example."""
    return encode_examples(tok, rec, mask_reasoning)[-1]


def encode_examples(tok, rec: dict, mask_reasoning: bool = False) -> list:
    """The training examples of a record: one for text and for most conversations; one per
    answer where the template renders history differently from the live turn."""
    if "text" in rec:
        return [tok.encode_text(rec["text"])]
    tools = json.loads(rec["tools"]) if rec.get("tools") else None
    return tok.encode_examples(rec["messages"], tools, mask_reasoning)


def _record_messages(rec: dict) -> list[dict]:
    if "messages" in rec:
        return rec["messages"]
    answer: list = next((rec[k] for k in ("chosen", "completion") if rec.get(k)), [])
    return list(rec.get("prompt") or []) + list(answer)


def template_refusals(tok, loaded: LoadedData, max_bad_share: float) -> LoadedData:
    """Rows the chat template refuses (roles out of order, a role it lacks) become bad rows
    with file:line, counted against data.max_bad_share. A row is rendered when its shape
    (roles, tools) has not rendered before, so most rows cost a dict lookup."""
    if not loaded.records or "text" in loaded.records[0]:
        return loaded
    ok_shapes: set = set()
    keep: list[int] = []
    bad: list[BadRow] = []
    for i, (rec, where) in enumerate(zip(loaded.records, loaded.wheres)):
        msgs = _record_messages(rec)
        shape = (
            tuple(m.get("role") for m in msgs),
            bool(rec.get("tools")),
            tuple(bool(m.get("tool_calls")) for m in msgs),
        )
        if shape not in ok_shapes:
            try:
                tok.render(msgs, tools=json.loads(rec["tools"]) if rec.get("tools") else None)
                ok_shapes.add(shape)
            except SageError as e:
                bad.append(
                    BadRow(
                        where,
                        e.message.replace(
                            "the chat template refused this conversation: ", "the chat template refuses this row: "
                        ),
                        where.rsplit(":", 1)[0],
                    )
                )
                continue
        keep.append(i)
    if not bad:
        return loaded
    total = max(1, loaded.total_rows)
    all_bad = loaded.bad + bad
    share = len(all_bad) / total
    if share > max_bad_share or not keep:
        raise SageError(
            f"{len(all_bad)} of {loaded.total_rows} rows are bad ({share:.0%}); first refused by the chat template: {bad[0]}",
            hint=f"fix the rows (the roles and their order the model's template accepts), or raise data.max_bad_share "
            f"(now {max_bad_share:.0%}) to skip them",
            kind="data",
        )
    loaded.records = [loaded.records[i] for i in keep]
    loaded.wheres = [loaded.wheres[i] for i in keep]
    if loaded.groups is not None:
        loaded.groups = [loaded.groups[i] for i in keep]
    loaded.bad = all_bad
    return loaded


def run_tokenizer(cfg, model_dir: str):
    """The model's chat tokenizer, rendering tools the way the run's config says."""
    from sage_ft_tui.engine.data.template import chat_tokenizer

    return chat_tokenizer(str(model_dir)).with_tool_format(cfg.data.tool_format)


def template_warnings(tok, records: list[dict], model: str) -> list[str]:
    """One line for each way the chat template changes what the data says: content it
    cannot render itself, a system prompt folded or moved, answers split into examples."""
    from sage_ft_tui.engine.data.turns import per_answer_note

    missing: dict[str, int] = {}
    with_system = n_split = convs = 0
    facts = tok.facts
    for rec in records:
        tools = json.loads(rec["tools"]) if rec.get("tools") else None
        msgs = _record_messages(rec)
        for what in tok.unsupported(msgs, tools):
            missing[what] = missing.get(what, 0) + 1
        with_system += any(m.get("role") == "system" for m in msgs)
        if "messages" in rec and (facts.history or facts.system != "native"):
            convs += 1
            try:
                n_split += len(tok.examples(msgs, tools)) > 1
            except SageError:
                pass
    out = []
    if missing:
        what = ", ".join(f"{k} ({n} rows)" for k, n in missing.items())
        out.append(
            f"the chat template of {model} cannot render {what}: they are rendered as text "
            "(<tools>, <tool_call>, <tool_response>, <think> tags, the Hermes/Qwen convention); "
            "set data.tool_format to template to use the template anyway, or pick a model whose template has tool support"
        )
    if with_system and facts.system_fold:
        out.append(
            f"the chat template of {model} has no system role: the system prompt of {with_system} rows is folded "
            "into the first user turn (system, a blank line, then the user text), and the saved adapter and merged "
            "model fold it the same way when served"
        )
    if n_split:
        reason = facts.history
        if facts.system == "placed in the last user turn" and with_system:
            reason = "the template puts the system prompt only in the last user turn"
        out.append(per_answer_note(convs, n_split, reason))
    return out


def _load_kwargs(cfg, mdir=None) -> dict:
    from sage_ft_tui.engine.models.family import is_vision

    d = cfg.data
    return dict(
        text_model="" if mdir is None or is_vision(mdir) else cfg.model.name,
        task=cfg.task,
        field_map=d.field_map,
        system_prompt=d.system_prompt,
        max_bad_share=d.max_bad_share,
        max_length=cfg.training.max_length,
        replace=d.replace,
        allow_secrets=d.allow_secrets,
        answer_field=cfg.grpo.answer_field,
    )


def prepare_run_data(cfg, run: Path) -> dict:
    """Write <run>/data/{train,eval}.jsonl and data_report.json; return the report.

    The data inspector runs here (so before every run): its row checks inside
    load_training_data, then the truncation check on the tokenized training samples —
    rows with no trained token left at max_length are dropped, and none left refuses."""
    from sage_ft_tui.engine.models.resolve import model_dir

    data_dir = RunLayout(run).data
    data_dir.mkdir(parents=True, exist_ok=True)
    mdir = model_dir(cfg.model.name, revision=cfg.model.revision)
    tok = run_tokenizer(cfg, str(mdir))
    if cfg.task == "chat" and not tok.has_template:
        raise SageError(
            f"model {cfg.model.name} has no chat template, which the chat task needs",
            hint="use an instruct/chat model, or the instruction or text task",
            kind="model",
        )
    if cfg.task == "code":
        from sage_ft_tui.engine.data.code.scan import build_code_records

        loaded, extra = build_code_records(cfg, tok)
    else:
        loaded = load_training_data(
            cfg.data.paths, fmt=cfg.data.format, max_samples=cfg.data.max_samples, **_load_kwargs(cfg, mdir)
        )
        extra = {}
        loaded = template_refusals(tok, loaded, cfg.data.max_bad_share)
        if cfg.task == "preference" and loaded.format == "kto" and pairs_only(cfg.preference.method):
            raise SageError(
                f"preference.method {cfg.preference.method} needs chosen/rejected pairs, but the data has one answer "
                "per row with a true/false label",
                hint="use preference.method kto (or auto) for labelled rows",
                kind="data",
            )
    findings = list(loaded.findings)
    if cfg.task == "grpo":
        findings += grpo_checks(cfg, tok, loaded)
    groups: Optional[Sequence[Hashable]]
    if cfg.task == "code" and loaded.wheres:
        groups = [w.rsplit("#", 1)[0] for w in loaded.wheres]
    else:
        groups = loaded.groups
    train, evald = split(loaded.records, cfg.data.validation_split, cfg.training.seed, groups)
    units = len(dict.fromkeys(groups)) if groups is not None else len(loaded.records)
    note = split_note(cfg.data.validation_split, units, len(evald), bool(cfg.data.eval_paths))
    if cfg.data.eval_paths:
        ev = load_training_data(cfg.data.eval_paths, fmt=cfg.data.format, **_load_kwargs(cfg, mdir))
        evald = ev.records
        findings += ev.findings
    max_len = cfg.training.max_length
    full = len(train) <= STATS_SAMPLE
    idx = list(range(len(train))) if full else sorted(random.Random(0).sample(range(len(train)), STATS_SAMPLE))
    is_text = bool(train) and "text" in train[0]
    sampled = [train[i] for i in idx]
    encoded = []
    if trains_own_rows(cfg.task):  # pairs / prompts: lengths only (the trainer scores its own tokens)
        seqs = [sequence_lengths(tok, rec) for rec in sampled]
        trunc = truncation_of_lengths([n for n, _ in seqs], max_len)
        trained = sum(sc for _, sc in seqs)
    else:
        for rec in sampled:
            enc = encode_record(tok, rec, cfg.data.reasoning == "mask")
            encoded.append(
                with_image_tokens(enc.input_ids, enc.completion_mask, rec, mdir)
            )  # the longest example: what max_length cuts
        trunc = truncation(encoded, max_len, is_text=is_text)
        trained = sum(sum(m[:max_len]) if not is_text else sum(m) for _, m in encoded)
    lengths = trunc.lengths
    dropped = 0
    if trunc.no_trained:
        where_of = {id(r): w for r, w in zip(loaded.records, loaded.wheres)}
        first = where_of.get(id(train[idx[trunc.no_trained[0]]]), "")
        if len(trunc.no_trained) == len(encoded):
            raise refuse_no_trained(trunc, first)
        drop = {idx[j] for j in trunc.no_trained}
        train = [r for i, r in enumerate(train) if i not in drop]
        dropped = len(drop)
        findings.append(no_trained_finding(dropped, first, max_len))
    tfind, trep = truncation_findings(trunc, cfg)
    findings += tfind
    _write_jsonl(RunLayout(run).train_data, train)
    _write_jsonl(RunLayout(run).eval_data, evald)
    report = {
        "format": loaded.format,
        "formats": loaded.formats,
        "task": cfg.task,
        "files": loaded.files,
        "model": cfg.model.name,
        "template": tok.template_source,
        "warnings": template_warnings(tok, sampled, cfg.model.name),
        "counts": {
            "rows": loaded.total_rows,
            "usable": len(loaded.records),
            "train": len(train),
            "eval": len(evald),
            "skipped": len(loaded.bad),
            "over_max_samples": loaded.over_max_samples,
            "dropped_no_trained_token": dropped,
            "duplicates": loaded.duplicates,
        },
        "split_note": note,
        "per_file": [{"file": f, **c} for f, c in loaded.per_file.items()],
        "skipped": [{"where": b.where, "reason": b.reason} for b in loaded.bad[:REPORT_LIST_LIMIT]],
        "skipped_by_reason": _by_reason(loaded.bad),
        "tokens": token_stats(lengths, max_len) | {"trained_share": round(trained / max(1, sum(lengths)), 4)},
        "inspection": {"findings": [f.as_dict() for f in findings], "truncation": trep, "sampled": not full},
        **extra,
    }
    atomic_write_json(RunLayout(run).data_report, report)
    return report


def grpo_checks(cfg, tok, loaded: LoadedData) -> list[Finding]:
    """Before a GRPO run: each user reward imported and called on the first prompt (in a
    child process, engine/methods/grpo_rewards.probe_rewards), the format regex compiled, and
    number_match against reference answers that hold no number (warned; refused when none
    does and it is the only reward: nothing could ever score)."""
    from sage_ft_tui.engine.methods.grpo_rewards import last_number, probe_rewards

    g = cfg.grpo
    rec = loaded.records[0]
    probe_rewards(
        list(g.rewards), {"prompt": prompt_text(tok, rec), "answer": rec["answer"]}, format_regex=g.format_regex
    )
    if "number_match" not in g.rewards:
        return []
    none = [w for r, w in zip(loaded.records, loaded.wheres) if last_number(str(r.get("answer", ""))) is None]
    if not none:
        return []
    n = len(loaded.records)
    if len(none) == n and list(g.rewards) == ["number_match"]:
        raise SageError(
            f"number_match: none of the {n} reference answers holds a number, so no completion can ever score",
            where=none[0],
            hint="use --reward exact_match for answers that are not numbers (or fix grpo.answer_field)",
            kind="data",
        )
    return [
        Finding(
            "reward_no_number",
            "warning",
            f"number_match: {len(none)} of {n} reference answers hold no number; it scores 0 on every completion "
            "of those prompts",
            none[0],
            "add exact_match for them, or check grpo.answer_field",
        )
    ]


def _by_reason(bad: list[BadRow]) -> dict[str, int]:
    out: dict[str, int] = {}
    for b in bad:
        out[b.reason] = out.get(b.reason, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


# ---- tokenization for the trainer (cached) ------------------------------------------


def _tokenize_batch(
    batch: dict,
    model_dir: str,
    max_length: int,
    is_text: bool,
    tool_format: str = "auto",
    mask_reasoning: bool = False,
    task: str = "instruction",
    unpair: bool = False,
) -> dict:
    from sage_ft_tui.engine.data.template import chat_tokenizer

    tok = chat_tokenizer(model_dir).with_tool_format(tool_format)
    ids_out, mask_out = [], []
    n = len(next(iter(batch.values())))
    if trains_own_rows(task):
        return _tokenize_trainer_batch(tok, batch, n, task, unpair)
    for i in range(n):
        rec = {k: batch[k][i] for k in batch}
        for enc in encode_examples(tok, {"text": rec["text"]} if is_text else rec, mask_reasoning):
            if is_text and len(enc.input_ids) > max_length:
                # Long documents become several max_length pieces rather than being cut off.
                for s in range(0, len(enc.input_ids), max_length):
                    ids_out.append(enc.input_ids[s : s + max_length])
                    mask_out.append(enc.completion_mask[s : s + max_length])
            else:
                ids_out.append(enc.input_ids)
                mask_out.append(enc.completion_mask)
    return {"input_ids": ids_out, "completion_mask": mask_out}


def _tokenize_trainer_batch(tok, batch: dict, n: int, task: str, unpair: bool) -> dict:
    """Preference rows → prompt_ids + chosen_ids/rejected_ids (or completion_ids + label;
    with `unpair` a pair becomes a good and a bad row for KTO); GRPO rows → the rendered
    prompt text and the reference answer (TRL generates from it)."""
    out: dict[str, list] = {}
    for i in range(n):
        rec = {k: batch[k][i] for k in batch}
        if task == "grpo":
            encs = [{"prompt": prompt_text(tok, rec), "answer": rec["answer"]}]
        elif unpair and rec.get("chosen"):
            base = {k: v for k, v in rec.items() if k not in ("chosen", "rejected")}
            encs = [
                encode_preference(tok, base | {"completion": rec[side], "label": side == "chosen"})
                for side in ("chosen", "rejected")
            ]
        else:
            encs = [encode_preference(tok, rec)]
        for enc in encs:
            for k, v in enc.items():
                out.setdefault(k, []).append(v)
    return out


def _has_trained_token(masks: list, max_length: int) -> list[bool]:
    return [any(m[:max_length]) for m in masks]


def tokenized_datasets(cfg, run: Path, model_dir: str):
    """(train, eval or None) as datasets with input_ids + completion_mask, cached under
    <run>/data/tokenized/<key> so a resume or re-run skips preprocessing. A file lock
    around the cache lets only one process build it; the others wait, then load it."""
    import fcntl

    import datasets

    from sage_ft_tui.engine.models.family import is_vision

    datasets.disable_progress_bars()
    if is_vision(Path(model_dir)) and not trains_own_rows(cfg.task):
        return vision_datasets(run)
    data_dir = RunLayout(run).data
    key = _cache_key(cfg, data_dir, model_dir)
    cache = RunLayout(run).tokenized / key
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    with open(cache.parent / f".{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for split_name in ("train", "eval"):
            src = data_dir / f"{split_name}.jsonl"
            target = cache / split_name
            if target.exists():
                out.append(datasets.load_from_disk(str(target)))
                continue
            if not src.exists() or src.stat().st_size == 0:
                out.append(None)
                continue
            ds = datasets.load_dataset(
                "json", data_files=str(src), split="train", cache_dir=str(data_dir / ".hf_cache")
            )
            is_text = "text" in ds.column_names
            nproc = min(os.cpu_count() or 1, 8) if len(ds) > TOKENIZE_PARALLEL_MIN_ROWS else None
            ds = ds.map(
                _tokenize_batch,
                batched=True,
                batch_size=1000,
                remove_columns=ds.column_names,
                num_proc=nproc,
                desc=None,
                fn_kwargs={
                    "model_dir": model_dir,
                    "max_length": cfg.training.max_length,
                    "is_text": is_text,
                    "tool_format": cfg.data.tool_format,
                    "mask_reasoning": cfg.data.reasoning == "mask",
                    "task": cfg.task,
                    "unpair": unpairs(cfg),
                },
            )
            ds = (
                ds
                if trains_own_rows(cfg.task)
                else ds.filter(  # the trainer cuts at max_length: no trained token before it teaches nothing
                    _has_trained_token,
                    fn_kwargs={"max_length": cfg.training.max_length},
                    input_columns=["completion_mask"],
                    batched=True,
                    batch_size=1000,
                    num_proc=nproc,
                )
            )
            tmp = cache / f".{split_name}.tmp"
            ds.save_to_disk(str(tmp))
            os.replace(tmp, target)
            out.append(datasets.load_from_disk(str(target)))
    return out[0], out[1]


def vision_datasets(run: Path):
    """(train, eval or None) for a vision-language model: TRL's prompt/completion/images rows
    (images.vision_examples), images decoded by `datasets` when the trainer reads a row; the
    processor tokenizes each batch itself (TRL's vision collator), so there is no token cache."""
    import datasets

    from sage_ft_tui.engine.data.images import vision_examples

    lay = RunLayout(run)
    out: list[Any] = []
    for src in (lay.train_data, lay.eval_data):
        rows: list[dict] = []
        if src.exists():
            with open(src, encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        rows += vision_examples(json.loads(line))
        if not rows:
            out.append(None)
            continue
        ds = datasets.Dataset.from_list(rows)
        out.append(ds.cast_column("images", datasets.List(datasets.Image())))
    return out[0], out[1]


def _cache_key(cfg, data_dir: Path, model_dir: str) -> str:
    h = hashlib.sha256()
    lay = RunLayout(data_dir.parent)
    for p in (lay.train_data, lay.eval_data):
        name = p.name
        if p.exists():
            st = p.stat()
            h.update(f"{name}:{st.st_size}:{st.st_mtime_ns}".encode())
    d = cfg.data
    method = cfg.preference.method if cfg.task == "preference" else ""
    h.update(f"{cfg.training.max_length}|{model_dir}|{cfg.task}|{method}|{d.tool_format}|{d.reasoning}|v4".encode())
    for fname in ("tokenizer.json", "chat_template.jinja", "tokenizer_config.json"):
        p = Path(model_dir) / fname
        if p.exists():
            h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()[:16]


def prepare_dataset(
    data: Any, model: str = TINY_NAME, *, task: str = "instruction", max_length: int = 2048, fmt: str = "auto"
):
    """Public API: rows (a path, list of dicts, or a datasets.Dataset) → a tokenized Dataset
    with input_ids and completion_mask, ready for `LoRATrainer.train`."""
    import datasets

    from sage_ft_tui.engine.data.template import chat_tokenizer
    from sage_ft_tui.engine.models.resolve import model_dir

    if isinstance(data, datasets.Dataset):
        data = data.to_list()
    if isinstance(data, list):
        fmt_ = fmt
        if fmt_ == "auto":
            from sage_ft_tui.engine.data.readers import Row

            found, _ = detect_format([Row(f"row {i}", r) for i, r in enumerate(data[:200])])
            if found is None:
                raise SageError(
                    "cannot tell the data format of the rows", hint="see `sage-ft-tui examples`", kind="data"
                )
            fmt_ = found
        check_task_format(task, fmt_)
        records = []
        for i, r in enumerate(data):
            try:
                records.append(normalize(r, fmt_))
            except RowError as e:
                raise SageError(f"row {i}: {e}", hint="fix the row", kind="data") from None
    else:
        records = load_training_data(data, task=task, fmt=fmt).records
    if any(r.get("images") for r in records):
        raise SageError(
            "prepare_dataset tokenizes text only, and these rows hold images",
            hint="train image rows as a run (`sage-ft-tui start --data FILE` with a vision-language model): "
            "its images are checked and processed by the model's processor",
            kind="data",
        )
    mdir = str(model_dir(model))
    tok = chat_tokenizer(mdir)
    is_text = "text" in records[0]
    batch = {k: [r.get(k) for r in records] for k in records[0]}
    if not is_text:
        batch = {"messages": [r["messages"] for r in records], "tools": [r.get("tools") for r in records]}
    out = _tokenize_batch(batch, mdir, max_length, is_text)
    del tok
    return datasets.Dataset.from_dict(out)


__all__ = [
    "load_training_data",
    "prepare_dataset",
    "prepare_run_data",
    "tokenized_datasets",
    "LoadedData",
]
