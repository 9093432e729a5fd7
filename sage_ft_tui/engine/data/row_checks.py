"""The checks on raw rows, before they are normalised (run by load.load_training_data):
video and audio rows are refused, and so are image rows outside the conversation tasks
(images.py checks the images of the others, row by row); preference data given to SFT is
refused; rows holding a secret are skipped as bad rows (kind and file:line only; the text
never reaches the run folder); `{{placeholders}}` are filled from `data.replace` or warned about.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Optional

from sage_ft_tui.engine.data.findings import Finding, refuse
from sage_ft_tui.engine.data.formats import PREFERENCE_FORMATS, PREFERENCE_KEYS, row_format
from sage_ft_tui.engine.data.images import IMAGE_FIELDS, IMAGE_PART_TYPES, IMAGE_PLACEHOLDER
from sage_ft_tui.engine.data.literals import LiteralScan
from sage_ft_tui.engine.data.rows import BadRow, Row, shown
from sage_ft_tui.engine.data.secrets import find_data_secret, may_hold_secret, row_strings
from sage_ft_tui.engine.methods.registry import image_tasks, trains_own_rows

MULTIMODAL_FIELDS = ("images", "image", "videos", "video", "audios", "audio", "image_url", "pixel_values")
MULTIMODAL_PART_TYPES = ("image", "image_url", "input_image", "video", "video_url", "audio", "input_audio")
MULTIMODAL_TOKENS = re.compile(r"<\|?(?:image|video|audio|img)(?:_pad)?\|?>", re.IGNORECASE)
MULTIMODAL_WORDS = ("image", "video", "audio", "img")  # in any multimodal field, token or part type
CHECK_BATCH = 256
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w.\-]{0,60})\s*\}\}")
PREFERENCE_TASK = "preference"  # the task that trains PREFERENCE_FORMATS rows


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


@dataclass
class _Batch:
    """What one look at a batch's strings and keys says its rows may hold."""

    media: bool
    secret: bool
    placeholder: bool
    keys: bool

    @property
    def clean(self) -> bool:
        return not (self.media or self.secret or self.placeholder or self.keys)


def _look(batch: list[Row], task: str) -> _Batch:
    strings: list[str] = []
    keys: set = set()
    for r in batch:
        row_strings(r.data, strings)
        if isinstance(r.data, dict):
            keys.update(r.data)
    joined = "\n".join(strings)
    return _Batch(
        media=_media_words()(joined.lower()),
        secret=may_hold_secret(joined),
        placeholder="{{" in joined,
        keys=not (_MEDIA_KEYS if trains_own_rows(task) else _MEDIA_OR_PREFERENCE_KEYS).isdisjoint(keys),
    )


def _refuse_media(r: Row, text: str, task: str, text_model: str) -> None:
    """Refuse a row with audio or video, or images the task or the model cannot train."""
    mm = _multimodal(r.data, text, task in image_tasks() and not text_model)
    if not mm:
        return
    if _multimodal(r.data, text, True) is not None:
        msg, hint = (
            f"rows with audio or video ({mm}): this tool trains text and images only",
            "remove that field (and its tokens) from the rows",
        )
    elif task not in image_tasks():
        msg, hint = (
            f"rows with images ({mm}): the {task} task trains text only",
            f"use the {'/'.join(image_tasks())} task for image rows, with a vision-language model",
        )
    else:
        msg, hint = (
            f"rows with images ({mm}): model {text_model} reads text only",
            "pick a vision-language model (Qwen2-VL, LLaVA, SmolVLM, Gemma 3; docs/MODELS.md), or give text-only data",
        )
    raise refuse(Finding("multimodal", "error", msg, r.where, hint))


def _refuse_preference(r: Row, task: str) -> None:
    pref = _preference(r.data) if not trains_own_rows(task) else None
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


@dataclass
class _Tally:
    """What the row checks saw across all rows, for their findings."""

    repl: dict[str, str]
    used: set[str] = field(default_factory=set)  # data.replace keys some row holds
    left: dict[str, list] = field(default_factory=dict)  # placeholder → [rows, first where]
    secrets: dict[str, int] = field(default_factory=dict)
    first_secret: str = ""

    def fill(self, r: Row) -> Row:
        """The row with data.replace filled in; the placeholders left are counted."""
        names: set[str] = set()
        if self.repl:
            _placeholders(r.data, names)
            self.used.update(names & self.repl.keys())
            names = set()
        data = _fill(r.data, self.repl) if self.repl else r.data
        _placeholders(data, names)
        for n in names:
            self.left.setdefault(n, [0, r.where])[0] += 1
        return Row(r.where, data, r.file) if data is not r.data else r


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
    tally = _Tally({k.strip().strip("{}").strip(): v for k, v in (replace or {}).items()})
    for start in range(0, len(rows), CHECK_BATCH):
        batch = rows[start : start + CHECK_BATCH]
        # One look at the whole batch decides which per-row checks can find anything: its
        # strings for secrets, media words and placeholders, its keys for media fields and
        # preference data. Most batches pass whole, with no per-row work at all.
        look = _look(batch, task)
        if look.clean:
            out.rows.extend(batch)
            continue
        for r in batch:
            text = "\n".join(row_strings(r.data))
            named = look.media and any(w in text.lower() for w in MULTIMODAL_WORDS)
            _refuse_media(r, text if named else "", task, text_model)
            _refuse_preference(r, task)
            label = find_data_secret(text) if look.secret else None
            if label:
                tally.secrets[label] = tally.secrets.get(label, 0) + 1
                tally.first_secret = tally.first_secret or r.where
                if not allow_secrets:
                    out.bad.append(BadRow(r.where, f"holds a secret ({label}); skipped", r.file))
                    continue
            out.rows.append(tally.fill(r) if look.placeholder and "{{" in text else r)
    out.findings += _secret_findings(tally, allow_secrets) + _placeholder_findings(tally, bool(rows))
    return out


def _secret_findings(tally: _Tally, allow_secrets: bool) -> list[Finding]:
    if not tally.secrets:
        return []
    kinds = ", ".join(f"{k} ×{n}" for k, n in sorted(tally.secrets.items(), key=lambda kv: -kv[1]))
    total = sum(tally.secrets.values())
    if allow_secrets:
        return [
            Finding(
                "secret",
                "warning",
                f"data.allow_secrets is on: {total} rows holding secrets ({kinds}) will be trained",
                tally.first_secret,
                "the model can repeat them; set data.allow_secrets: false to skip those rows",
            )
        ]
    return [
        Finding(
            "secret",
            "warning",
            f"{total} rows hold secrets ({kinds}) and were skipped",
            tally.first_secret,
            "remove the secrets from the data (data.allow_secrets: true trains them anyway)",
        )
    ]


def _placeholder_findings(tally: _Tally, any_rows: bool) -> list[Finding]:
    out: list[Finding] = []
    unused = sorted(set(tally.repl) - tally.used)
    if unused and any_rows:
        unused_text = ", ".join("{{" + shown(k, 40) + "}}" for k in unused[:6]) + (" …" if len(unused) > 6 else "")
        out.append(
            Finding(
                "replace_unused",
                "warning",
                f"data.replace: no row holds {unused_text}, so {'it does' if len(unused) == 1 else 'they do'} nothing",
                "",
                "check the spelling against the {{placeholders}} in the data, or remove "
                + ("it" if len(unused) == 1 else "them"),
            )
        )
    if tally.left:
        top = sorted(tally.left.items(), key=lambda kv: (-kv[1][0], kv[0]))
        names_s = ", ".join("{{" + k + "}}" + f" ×{v[0]}" for k, v in top[:6]) + (" ..." if len(top) > 6 else "")
        out.append(
            Finding(
                "placeholder",
                "warning",
                f"template placeholders would be trained literally: {names_s}",
                top[0][1][1],
                f"fill them with --set data.replace.{top[0][0]}=TEXT (or fix the data)",
            )
        )
    return out
