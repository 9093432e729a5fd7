"""The data inspector: what is wrong with the data before a run trains on it.

Two halves, both run by `prepare_run_data` (so by every `create_run`: CLI `start`,
`quickstart`, `run CONFIG`, the wizard) and by the wizard's `inspect_data`:

- on the raw rows (`check_rows`): video and audio rows are refused, and so are image rows
  outside the conversation tasks (images.py checks the images of the others, row by row);
  preference data given to SFT is refused, rows holding a secret are skipped as bad rows (kind and
  file:line only; the text never reaches the run folder), `{{placeholders}}` are filled from
  `data.replace` or warned about;
- on the tokenized samples (`truncation`): the share cut at the run's max length, the
  share of answers that lose their EOS, the lengths that keep 95% / 99% whole, and the rows
  left with no trained token (dropped; none left at all → refused).

Every result is a `Finding` (kind, severity, message, where, hint) the CLI prints in one
short block and the wizard lists.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any, Optional

from sage_ft_tui.engine.data.formats import PREFERENCE_FORMATS, PREFERENCE_KEYS, row_format
from sage_ft_tui.engine.data.images import IMAGE_FIELDS, IMAGE_PART_TYPES, IMAGE_PLACEHOLDER, ImageRef, row_image_refs
from sage_ft_tui.engine.data.literals import LiteralScan
from sage_ft_tui.engine.data.readers import BadRow, Row, shown
from sage_ft_tui.engine.data.secrets import find_data_secret, may_hold_secret, row_strings
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.methods.registry import trains_own_rows
from sage_ft_tui.engine.models.tiny import TINY_NAME

# A warning once this share of answers loses its end: the model learns not to stop.
EOS_LOST_WARN_SHARE = 0.05
CUT_WARN_SHARE = 0.05

MULTIMODAL_FIELDS = ("images", "image", "videos", "video", "audios", "audio", "image_url", "pixel_values")
MULTIMODAL_PART_TYPES = ("image", "image_url", "input_image", "video", "video_url", "audio", "input_audio")
MULTIMODAL_TOKENS = re.compile(r"<\|?(?:image|video|audio|img)(?:_pad)?\|?>", re.IGNORECASE)
MULTIMODAL_WORDS = ("image", "video", "audio", "img")  # in any multimodal field, token or part type
CHECK_BATCH = 256
SKIPPED_SHOWN = 3  # bad rows named in the CLI's data block (all of them are in data_report.json)
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w.\-]{0,60})\s*\}\}")
PREFERENCE_TASK = "preference"  # the task that trains PREFERENCE_FORMATS rows


@dataclass
class Finding:
    kind: str  # multimodal, preference, secret, placeholder, truncation, eos_lost, no_trained_token, duplicates ...
    severity: str  # error | warning
    message: str
    where: str = ""  # file:line of the first instance
    hint: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        at = f" ({self.where})" if self.where else ""
        return f"{self.severity}: {self.message}{at}" + (f" — {self.hint}" if self.hint else "")


def refuse(finding: Finding) -> SageError:
    """A SageError for an error finding; `.finding` keeps it for the wizard."""
    e = SageError(finding.message, hint=finding.hint, kind="data", where=finding.where or None, code=finding.kind)
    e.finding = finding  # type: ignore[attr-defined]
    return e


@dataclass
class RowChecks:
    rows: list[Row] = field(default_factory=list)  # kept (placeholders filled)
    bad: list[BadRow] = field(default_factory=list)  # skipped (secrets)
    findings: list[Finding] = field(default_factory=list)


# ---- raw rows ----------------------------------------------------------------------


# A row holding none of these keys is not multimodal by a field (nor preference data).
_MEDIA_KEYS = frozenset(MULTIMODAL_FIELDS)
_MEDIA_OR_PREFERENCE_KEYS = _MEDIA_KEYS | frozenset(PREFERENCE_KEYS)


@lru_cache(maxsize=1)
def _media_words() -> LiteralScan:
    return LiteralScan(MULTIMODAL_WORDS)


# Tasks whose rows may hold images (conversations trained by SFT on a vision-language model).
IMAGE_TASKS = ("instruction", "chat", "qa")


def _multimodal(d: Any, text: str, images_ok: bool = False) -> Optional[str]:
    """The field that makes a row multimodal, or None (`text`: the row's strings joined).
    With `images_ok`, images (their fields, parts and <image> placeholders) do not count."""
    if not isinstance(d, dict):
        return None
    for k in MULTIMODAL_FIELDS:
        if images_ok and k in IMAGE_FIELDS:
            continue
        v = d.get(k)
        if v not in (None, "", [], {}):
            return f"field {k!r}"
    if not text:
        return None  # the walk below only runs on rows (batches) that name an image, video or audio
    stack: list[tuple[str, Any]] = [(k, v) for k, v in d.items()]
    while stack:
        path, v = stack.pop()
        if isinstance(v, str):
            for m in MULTIMODAL_TOKENS.finditer(v):
                if not (images_ok and m.group(0) == IMAGE_PLACEHOLDER):
                    return f"{m.group(0)} token in {path!r}"
        elif isinstance(v, dict):
            if v.get("type") in MULTIMODAL_PART_TYPES and not (images_ok and v["type"] in IMAGE_PART_TYPES):
                return f"{v['type']} content part in {path!r}"
            stack.extend((f"{path}.{k}", x) for k, x in v.items())
        elif isinstance(v, list):
            stack.extend((f"{path}[{i}]", x) for i, x in enumerate(v))
    return None


def _preference(d: Any) -> Optional[str]:
    """The preference format (formats.PREFERENCE_FORMATS) of a row, or None."""
    fmt = row_format(d)
    return fmt if fmt in PREFERENCE_FORMATS else None


def _fill(obj: Any, replace: dict[str, str]) -> Any:
    if isinstance(obj, str):
        if "{{" not in obj:
            return obj
        return PLACEHOLDER.sub(lambda m: replace.get(m.group(1), m.group(0)), obj)
    if isinstance(obj, dict):
        return {k: _fill(v, replace) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_fill(v, replace) for v in obj]
    return obj


def _placeholders(obj: Any, out: set[str]) -> None:
    if isinstance(obj, str):
        if "{{" in obj:
            out.update(PLACEHOLDER.findall(obj))
    elif isinstance(obj, dict):
        for v in obj.values():
            _placeholders(v, out)
    elif isinstance(obj, list):
        for v in obj:
            _placeholders(v, out)


def check_rows(
    rows: list[Row],
    task: str,
    *,
    replace: Optional[dict[str, str]] = None,
    allow_secrets: bool = False,
    text_model: str = "",
) -> RowChecks:
    """Refuse multimodal and preference data, skip rows with secrets, fill placeholders.
    `text_model`: the name of the run's model when it reads text only (image rows refused)."""
    out = RowChecks()
    repl = {k.strip().strip("{}").strip(): v for k, v in (replace or {}).items()}
    used: set[str] = set()  # data.replace keys some row holds
    left: dict[str, list] = {}  # placeholder → [rows, first where]
    secret_rows: dict[str, int] = {}
    first_secret = ""
    for start in range(0, len(rows), CHECK_BATCH):
        batch = rows[start : start + CHECK_BATCH]
        # One look at the whole batch decides which per-row checks can find anything: its
        # strings for secrets, media words and placeholders, its keys for media fields and
        # preference data. Most batches pass whole, with no per-row work at all.
        strings: list[str] = []
        keys: set = set()
        for r in batch:
            row_strings(r.data, strings)
            if isinstance(r.data, dict):
                keys.update(r.data)
        joined = "\n".join(strings)
        maybe_mm = _media_words()(joined.lower())
        maybe_secret = may_hold_secret(joined)
        maybe_ph = "{{" in joined
        maybe_keys = not (_MEDIA_KEYS if trains_own_rows(task) else _MEDIA_OR_PREFERENCE_KEYS).isdisjoint(keys)
        if not (maybe_mm or maybe_secret or maybe_ph or maybe_keys):
            out.rows.extend(batch)
            continue
        texts = ["\n".join(row_strings(r.data)) for r in batch]
        for r, text in zip(batch, texts):
            named = maybe_mm and any(w in text.lower() for w in MULTIMODAL_WORDS)
            mm = _multimodal(r.data, text if named else "", task in IMAGE_TASKS and not text_model)
            if mm:
                images_only = _multimodal(r.data, text if named else "", True) is None
                if not images_only:
                    msg, hint = (
                        f"rows with audio or video ({mm}): this tool trains text and images only",
                        "remove that field (and its tokens) from the rows",
                    )
                elif task not in IMAGE_TASKS:
                    msg, hint = (
                        f"rows with images ({mm}): the {task} task trains text only",
                        f"use the {'/'.join(IMAGE_TASKS)} task for image rows, with a vision-language model",
                    )
                else:
                    msg, hint = (
                        f"rows with images ({mm}): model {text_model} reads text only",
                        "pick a vision-language model (Qwen2-VL, LLaVA, SmolVLM, Gemma 3; docs/MODELS.md), "
                        "or give text-only data",
                    )
                raise refuse(Finding("multimodal", "error", msg, r.where, hint))
            if not trains_own_rows(task):
                pref = _preference(r.data)
                if pref:
                    raise refuse(
                        Finding(
                            "preference",
                            "error",
                            f"this is preference data: preference rows ({pref}: chosen/rejected answers or good/bad "
                            f"labels), which the {task} task would train on as plain answers",
                            r.where,
                            f"use --task {PREFERENCE_TASK} (or give one answer per row)",
                        )
                    )
            label = find_data_secret(text) if maybe_secret else None
            if label:
                secret_rows[label] = secret_rows.get(label, 0) + 1
                first_secret = first_secret or r.where
                if not allow_secrets:
                    out.bad.append(BadRow(r.where, f"holds a secret ({label}); skipped", r.file))
                    continue
            if not (maybe_ph and "{{" in text):
                out.rows.append(r)
                continue
            names: set[str] = set()
            if repl:
                _placeholders(r.data, names)
                used.update(names & repl.keys())
                names = set()
            data = _fill(r.data, repl) if repl else r.data
            _placeholders(data, names)
            for n in names:
                left.setdefault(n, [0, r.where])[0] += 1
            out.rows.append(Row(r.where, data, r.file) if data is not r.data else r)
    if secret_rows:
        kinds = ", ".join(f"{k} ×{n}" for k, n in sorted(secret_rows.items(), key=lambda kv: -kv[1]))
        total = sum(secret_rows.values())
        if allow_secrets:
            out.findings.append(
                Finding(
                    "secret",
                    "warning",
                    f"data.allow_secrets is on: {total} rows holding secrets ({kinds}) will be trained",
                    first_secret,
                    "the model can repeat them; set data.allow_secrets: false to skip those rows",
                )
            )
        else:
            out.findings.append(
                Finding(
                    "secret",
                    "warning",
                    f"{total} rows hold secrets ({kinds}) and were skipped",
                    first_secret,
                    "remove the secrets from the data (data.allow_secrets: true trains them anyway)",
                )
            )
    unused = sorted(set(repl) - used)
    if unused and rows:
        unused_text = ", ".join("{{" + shown(k, 40) + "}}" for k in unused[:6]) + (" …" if len(unused) > 6 else "")
        out.findings.append(
            Finding(
                "replace_unused",
                "warning",
                f"data.replace: no row holds {unused_text}, so {'it does' if len(unused) == 1 else 'they do'} nothing",
                "",
                "check the spelling against the {{placeholders}} in the data, or remove "
                + ("it" if len(unused) == 1 else "them"),
            )
        )
    if left:
        top = sorted(left.items(), key=lambda kv: (-kv[1][0], kv[0]))
        names_s = ", ".join("{{" + k + "}}" + f" ×{v[0]}" for k, v in top[:6]) + (" ..." if len(top) > 6 else "")
        example = top[0][0]
        out.findings.append(
            Finding(
                "placeholder",
                "warning",
                f"template placeholders would be trained literally: {names_s}",
                top[0][1][1],
                f"fill them with --set data.replace.{example}=TEXT (or fix the data)",
            )
        )
    return out


# ---- tokenized samples --------------------------------------------------------------


@dataclass
class Truncation:
    samples: int = 0
    cut: int = 0  # longer than max_length
    answers: int = 0  # samples with an answer (conversations)
    eos_lost: int = 0  # answers whose last trained token (the EOS) is past max_length
    no_trained: list[int] = field(default_factory=list)  # indices with no trained token within max_length
    lengths: list[int] = field(default_factory=list)
    max_length: int = 0

    def keep_length(self, share: float) -> int:
        """The smallest max length that keeps `share` of the samples whole."""
        if not self.lengths:
            return 0
        s = sorted(self.lengths)
        return s[min(len(s) - 1, max(0, int(share * len(s) + 0.999999) - 1))]

    def as_dict(self) -> dict:
        n = max(1, self.samples)
        return {
            "max_length": self.max_length,
            "samples": self.samples,
            "share_cut": round(self.cut / n, 4),
            "share_eos_lost": round(self.eos_lost / max(1, self.answers), 4),
            "no_trained_token": len(self.no_trained),
            "keep_95": self.keep_length(0.95),
            "keep_99": self.keep_length(0.99),
        }


def truncation(encoded: list[tuple[list[int], list[int]]], max_length: int, *, is_text: bool) -> Truncation:
    """From (input_ids, completion_mask) pairs: what max_length cuts. Text documents are
    split into max_length pieces (nothing lost), so only their lengths count."""
    t = Truncation(max_length=max_length)
    for i, (ids, mask) in enumerate(encoded):
        n = len(ids)
        t.samples += 1
        t.lengths.append(n)
        if is_text:
            continue
        if n > max_length:
            t.cut += 1
        if any(mask):
            t.answers += 1
            if any(mask[max_length:]):  # its last trained token (the EOS) lies past max_length
                t.eos_lost += 1
        if not any(mask[:max_length]):
            t.no_trained.append(i)
    return t


def truncation_of_lengths(lengths: list[int], max_length: int) -> Truncation:
    """Only what lengths tell (preference pairs, GRPO prompts): the share cut, the lengths that keep all."""
    return Truncation(
        samples=len(lengths),
        cut=sum(1 for n in lengths if n > max_length),
        lengths=list(lengths),
        max_length=max_length,
    )


def memory_at(cfg, max_length: int) -> Optional[int]:
    """Estimated bytes a run of `cfg` needs at `max_length` (None when it cannot be told)."""
    try:
        from sage_ft_tui.engine.hardware.estimate import estimate_for_config

        rc = cfg.model_copy(update={"training": cfg.training.model_copy(update={"max_length": max_length})})
        return estimate_for_config(rc).total
    except Exception:  # the estimate is advice; a model it cannot read must not stop the data step
        return None


def truncation_findings(t: Truncation, cfg=None) -> tuple[list[Finding], dict]:
    """Findings and the report section for a Truncation (memory from the estimator)."""
    from sage_ft_tui.engine.fsutil import fmt_bytes

    rep = t.as_dict()
    if cfg is not None and t.lengths:
        for key in ("keep_95", "keep_99"):
            mem = memory_at(cfg, max(rep[key], 1))
            rep[f"{key}_memory"] = mem
    findings: list[Finding] = []

    def advice() -> str:
        parts = []
        for key, pct in (("keep_95", "95%"), ("keep_99", "99%")):
            mem = rep.get(f"{key}_memory")
            parts.append(f"--max-length {rep[key]} keeps {pct} whole" + (f" (~{fmt_bytes(mem)})" if mem else ""))
        return "; ".join(parts)

    if t.answers and rep["share_eos_lost"] >= EOS_LOST_WARN_SHARE:
        findings.append(
            Finding(
                "eos_lost",
                "warning",
                f"{rep['share_eos_lost']:.0%} of answers lose their end (EOS) at max length {t.max_length}: "
                "the model learns not to stop",
                "",
                advice(),
            )
        )
    elif rep["share_cut"] >= CUT_WARN_SHARE:
        findings.append(
            Finding(
                "truncation",
                "warning",
                f"{rep['share_cut']:.0%} of samples are cut at max length {t.max_length}",
                "",
                advice(),
            )
        )
    return findings, rep


def no_trained_finding(dropped: int, where: str, max_length: int) -> Finding:
    return Finding(
        "no_trained_token",
        "warning",
        f"{dropped} rows keep no answer token within max length {max_length} and were dropped",
        where,
        "raise --max-length, or shorten the prompts of those rows",
    )


def refuse_no_trained(t: Truncation, where: str) -> SageError:
    return refuse(
        Finding(
            "no_trained_token",
            "error",
            f"no sample keeps an answer token within max length {t.max_length}: training would learn nothing",
            where,
            f"raise --max-length (the longest sample has {max(t.lengths, default=0)} tokens; "
            f"{t.keep_length(0.95)} keeps 95% whole)",
        )
    )


# ---- the short block ---------------------------------------------------------------


def summary_lines(report: dict) -> list[str]:
    """The inspector's block for the CLI, from data_report.json."""
    ins = report.get("inspection") or {}
    lines = []
    tr = ins.get("truncation") or {}
    if tr.get("samples"):
        from sage_ft_tui.engine.fsutil import fmt_bytes

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

    @property
    def ok(self) -> bool:
        return self.error is None and self.usable > 0


def _error_finding(e: SageError) -> Finding:
    f = getattr(e, "finding", None)
    return f if isinstance(f, Finding) else Finding(e.kind, "error", e.message, e.where or "", e.hint)


def _text_model(model: str) -> str:
    """`model` when it reads text only (image rows are refused naming it); '' for a VLM or
    a model not found here (its own error comes later)."""
    from sage_ft_tui.engine.models.family import is_vision
    from sage_ft_tui.engine.models.resolve import model_dir

    try:
        return "" if is_vision(model_dir(model)) else model
    except SageError:
        return ""


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
) -> DataInspection:
    """Detect, validate and tokenize a sample; never raises for bad data (see .error and
    .findings). `cfg` (a RunConfig) prices the suggested max lengths in memory."""
    from sage_ft_tui.engine.data.preference import preview_pair, sequence_lengths
    from sage_ft_tui.engine.data.prepare import (
        REPORT_LIST_LIMIT,
        STATS_SAMPLE,
        encode_record,
        load_training_data,
        template_refusals,
        template_warnings,
        with_image_tokens,
    )

    out = DataInspection()
    kw: dict[str, Any] = dict(
        task=task,
        fmt=fmt,
        field_map=field_map,
        replace=replace,
        allow_secrets=allow_secrets,
        text_model=_text_model(model),
    )
    try:
        loaded = load_training_data(paths, max_bad_share=max_bad_share, **kw)
    except SageError as e:
        out.error = e
        out.findings.append(_error_finding(e))
        try:  # still list what is wrong, row by row
            loaded = load_training_data(paths, max_bad_share=1.0, **kw)
            out.bad_rows = [(b.where, b.reason) for b in loaded.bad[:REPORT_LIST_LIMIT]]
            out.rows, out.format, out.files = loaded.total_rows, loaded.format, loaded.files
            # the same counts as the error line: rows = usable + bad (the refusal is the error, not the counts)
            out.usable, out.bad, out.per_file = len(loaded.records), len(loaded.bad), loaded.per_file
        except SageError:
            pass
        return out
    out.format, out.rows, out.usable, out.files = loaded.format, loaded.total_rows, len(loaded.records), loaded.files
    out.bad, out.per_file = len(loaded.bad), loaded.per_file
    out.bad_rows = [(b.where, b.reason) for b in loaded.bad[:REPORT_LIST_LIMIT]]
    out.findings.extend(loaded.findings)
    try:
        from sage_ft_tui.engine.data.template import chat_tokenizer
        from sage_ft_tui.engine.models.resolve import model_dir

        tok = chat_tokenizer(str(model_dir(model)))
        if task == "chat" and not tok.has_template:
            raise SageError(
                f"model {model} has no chat template, which the chat task needs",
                hint="use an instruct/chat model",
                kind="model",
            )
        loaded = template_refusals(tok, loaded, max_bad_share)  # rows the template refuses: bad rows
        out.usable, out.bad = len(loaded.records), len(loaded.bad)  # rows = usable + bad, still
        out.bad_rows = [(b.where, b.reason) for b in loaded.bad[:REPORT_LIST_LIMIT]]
        sample = loaded.records[:STATS_SAMPLE]
        out.warnings = template_warnings(tok, sample, model)
        if trains_own_rows(task):
            t = truncation_of_lengths([sequence_lengths(tok, r)[0] for r in sample], max_length)
            out.token_lengths = t.lengths
            out.share_truncated = round(t.cut / max(1, t.samples), 4)
            tf, out.truncation = truncation_findings(t, cfg)
            out.findings.extend(tf)
            for rec in loaded.records[:preview]:
                pair = preview_pair(tok, rec)
                out.pairs.append(pair)
                answer = pair.get("chosen", pair.get("completion", pair.get("answer", "")))
                out.preview.append([(pair["prompt"], False), (answer, task != "grpo")])
                out.images.append([])
            return out
        mdir = model_dir(model)
        encoded = []
        for r in sample:
            enc = encode_record(tok, r)
            encoded.append(with_image_tokens(enc.input_ids, enc.completion_mask, r, mdir))
        t = truncation(encoded, max_length, is_text=bool(sample) and "text" in sample[0])
        out.token_lengths = t.lengths
        out.share_truncated = round(sum(1 for n in t.lengths if n > max_length) / max(1, len(t.lengths)), 4)
        if t.no_trained and len(t.no_trained) == len(encoded):
            refused = refuse_no_trained(t, loaded.wheres[t.no_trained[0]])
            out.error = refused
            out.findings.append(_error_finding(refused))
        elif t.no_trained:
            out.findings.append(no_trained_finding(len(t.no_trained), loaded.wheres[t.no_trained[0]], max_length))
        tf, out.truncation = truncation_findings(t, cfg)
        out.findings.extend(tf)
        for rec in loaded.records[:preview]:
            if "text" in rec:
                out.preview.append([(rec["text"][:2000], True)])
            else:
                tools = json.loads(rec["tools"]) if rec.get("tools") else None
                out.preview.append(tok.segments(rec["messages"], tools))
            out.images.append(row_image_refs(rec))
    except SageError as e:
        out.error = e
        out.findings.append(_error_finding(e))
    return out
