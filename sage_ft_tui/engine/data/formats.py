"""Reading data files row by row (with file:line for every row) and turning each row into
a conversation or a plain text, whatever format it came in.

Formats: alpaca, qa, sharegpt, messages (OpenAI), prompt_completion, text. Detection
looks at the keys of the rows; `field_map` renames the file's columns to ours first.
Torch-free; pyarrow only for parquet.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

from sage_ft_tui.engine.errors import SageError

FORMATS = ("alpaca", "qa", "sharegpt", "messages", "prompt_completion", "text")
DATA_SUFFIXES = (".json", ".jsonl", ".csv", ".parquet", ".txt")
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
    "function_call": "assistant",
    "observation": "tool",
    "tool": "tool",
    "function": "tool",
}
MESSAGE_ROLES = ("system", "user", "assistant", "tool")


@dataclass
class Row:
    where: str  # file:line, file[index], file:row N
    data: Any


@dataclass
class BadRow:
    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass
class ReadResult:
    rows: list[Row] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


class RowError(ValueError):
    """A row that cannot be used; the message is the reason shown to the user."""


# ---- reading --------------------------------------------------------------------


def expand_paths(paths: list[str]) -> list[Path]:
    out: list[Path] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if not p.exists():
            raise SageError(
                f"data path {raw} does not exist",
                hint="check the path (relative paths are from the current folder)",
                kind="data",
            )
        if p.is_dir():
            found = sorted(
                f
                for f in p.rglob("*")
                if f.is_file()
                and f.suffix.lower() in DATA_SUFFIXES
                and not any(part.startswith(".") for part in f.relative_to(p).parts)
            )
            if not found:
                raise SageError(
                    f"data folder {raw} holds no data files",
                    hint=f"put {', '.join(DATA_SUFFIXES)} files in it",
                    kind="data",
                )
            out.extend(found)
        else:
            if p.suffix.lower() not in DATA_SUFFIXES:
                raise SageError(
                    f"{raw}: unsupported file type {p.suffix or '(none)'!r}",
                    hint=f"use one of {', '.join(DATA_SUFFIXES)}",
                    kind="data",
                )
            out.append(p)
    return out


def read_files(paths: list[str]) -> ReadResult:
    res = ReadResult()
    for f in expand_paths(paths):
        res.files.append(str(f))
        reader = {
            ".jsonl": _read_jsonl,
            ".json": _read_json,
            ".csv": _read_csv,
            ".parquet": _read_parquet,
            ".txt": _read_txt,
        }[f.suffix.lower()]
        for item in reader(f):
            (res.bad if isinstance(item, BadRow) else res.rows).append(item)
    return res


def _read_jsonl(f: Path) -> Iterator[Row | BadRow]:
    with open(f, "rb") as fh:
        data = fh.read()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = data.split(b"\n")
    n = len(lines)
    for i, raw in enumerate(lines, 1):
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            continue
        where = f"{f}:{i}"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            yield BadRow(where, f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1})")
            continue
        try:
            yield Row(where, json.loads(text))
        except ValueError as e:
            torn = i == n or (i == n - 1 and not lines[-1].strip())
            yield BadRow(
                where,
                "torn last line (incomplete JSON)"
                if torn and not data.endswith(b"\n")
                else f"not valid JSON ({e.msg} at column {e.colno})",
            )


def _decode(f: Path) -> str:
    try:
        return f.read_bytes().decode("utf-8-sig")  # a BOM is fine
    except UnicodeDecodeError as e:
        raise SageError(
            f"{f}: not valid UTF-8 (byte offset {e.start})", hint="save the file as UTF-8", kind="data"
        ) from None


def _read_json(f: Path) -> Iterator[Row | BadRow]:
    text = _decode(f)
    if not text.strip():
        return
    try:
        obj = json.loads(text)
    except ValueError as e:
        if text.lstrip().startswith("{") and "\n{" in text:
            yield from _read_jsonl(f)  # JSON lines saved as .json
            return
        raise SageError(
            f"{f}:{e.lineno}: not valid JSON ({e.msg})",
            hint="fix the JSON, or save one object per line as .jsonl",
            kind="data",
        ) from None
    if isinstance(obj, dict):
        lists = [k for k, v in obj.items() if isinstance(v, list)]
        if len(lists) == 1 and all(isinstance(x, dict) for x in obj[lists[0]][:5]):
            obj = obj[lists[0]]  # {"data": [...]}
        else:
            raise SageError(
                f"{f}: a JSON object, not a list of rows",
                hint='a .json file must hold an array of objects, e.g. [{"instruction": ..., "output": ...}]',
                kind="data",
            )
    if not isinstance(obj, list):
        raise SageError(
            f"{f}: JSON {type(obj).__name__}, not a list of rows",
            hint="a .json file must hold an array of objects",
            kind="data",
        )
    for i, item in enumerate(obj):
        yield Row(f"{f}[{i}]", item)


def _read_csv(f: Path) -> Iterator[Row | BadRow]:
    text = _decode(f)
    rdr = csv.reader(text.splitlines(keepends=True))
    try:
        header = next(rdr)
    except StopIteration:
        return
    header = [h.strip() for h in header]
    prev = rdr.line_num
    for rec in rdr:
        where = f"{f}:{prev + 1}"
        prev = rdr.line_num
        if not any(c.strip() for c in rec):
            continue
        if len(rec) != len(header):
            yield BadRow(where, f"{len(rec)} columns, the header has {len(header)}")
            continue
        yield Row(where, {h: _csv_value(v) for h, v in zip(header, rec)})


def _csv_value(v: str):
    return None if v.strip().lower() in ("", "nan", "null", "none", "na", "n/a") else v


def _read_parquet(f: Path) -> Iterator[Row | BadRow]:
    try:
        import pyarrow.parquet as pq

        table = pq.read_table(f)
    except Exception as e:
        raise SageError(
            f"{f}: cannot read parquet ({str(e).splitlines()[0][:120]})",
            hint="check the file is a valid parquet file",
            kind="data",
        ) from None
    for i, item in enumerate(table.to_pylist()):
        yield Row(f"{f}:row {i + 1}", item)


def _read_txt(f: Path) -> Iterator[Row | BadRow]:
    text = _decode(f)
    text = text.replace("\r\n", "\n")
    # Paragraphs (blank-line separated) are the documents; line numbers point at their start.
    line, buf, start = 1, [], 1
    for ln in text.split("\n"):
        if ln.strip():
            if not buf:
                start = line
            buf.append(ln)
        elif buf:
            yield Row(f"{f}:{start}", {"text": "\n".join(buf)})
            buf = []
        line += 1
    if buf:
        yield Row(f"{f}:{start}", {"text": "\n".join(buf)})


# ---- detection ------------------------------------------------------------------


def row_format(d: Any) -> Optional[str]:
    if not isinstance(d, dict):
        return None
    if "conversations" in d:
        return "sharegpt"
    if "messages" in d:
        return "messages"
    if "instruction" in d or ("output" in d and "input" in d):
        return "alpaca"
    if "question" in d:
        return "qa"
    if "prompt" in d or "completion" in d:
        return "prompt_completion"
    if "text" in d or "content" in d:
        return "text"
    return None


def apply_field_map(d: Any, field_map: dict[str, str]) -> Any:
    if not field_map or not isinstance(d, dict):
        return d
    out = dict(d)
    for ours, theirs in field_map.items():
        if theirs in out:
            out[ours] = out.pop(theirs)
    return out


def detect_format(rows: list[Row], sample: int = 200) -> tuple[Optional[str], dict[str, int]]:
    counts: dict[str, int] = {}
    for r in rows[:sample]:
        f = row_format(r.data)
        if f:
            counts[f] = counts.get(f, 0) + 1
    if not counts:
        return None, counts
    return max(counts, key=counts.get), counts


# ---- normalisation --------------------------------------------------------------


def _text(v: Any, name: str, required: bool = True) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        if required:
            raise RowError(f"missing field {name!r}")
        return ""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(v)
    if not isinstance(v, str):
        raise RowError(f"field {name!r} is {type(v).__name__}, expected text")
    if required and not v.strip():
        raise RowError(f"field {name!r} is empty")
    return v


def _need(d: dict, *keys: str) -> None:
    for k in keys:
        if k not in d:
            raise RowError(f"missing field {k!r}")


def normalize(d: Any, fmt: str, system_prompt: Optional[str] = None) -> dict:
    """One row → {"messages": [...], "tools": ...} or {"text": ...}. Raises RowError."""
    if not isinstance(d, dict):
        raise RowError(f"a {type(d).__name__}, expected an object with fields")
    if fmt == "text":
        key = "text" if "text" in d else "content"
        return {"text": _text(d.get(key), key)}
    if fmt == "alpaca":
        _need(d, "instruction", "output")
        msgs = []
        sys_ = _text(d.get("system"), "system", required=False) or system_prompt
        if sys_:
            msgs.append({"role": "system", "content": sys_})
        hist = d.get("history") or []
        if not isinstance(hist, list):
            raise RowError("field 'history' must be a list of [question, answer] pairs")
        for h in hist:
            if not (isinstance(h, (list, tuple)) and len(h) == 2):
                raise RowError("field 'history' must be a list of [question, answer] pairs")
            msgs += [
                {"role": "user", "content": _text(h[0], "history")},
                {"role": "assistant", "content": _text(h[1], "history")},
            ]
        user = _text(d.get("instruction"), "instruction")
        inp = _text(d.get("input"), "input", required=False)
        msgs.append({"role": "user", "content": f"{user}\n\n{inp}" if inp.strip() else user})
        msgs.append({"role": "assistant", "content": _text(d.get("output"), "output")})
        return {"messages": msgs}
    if fmt == "qa":
        _need(d, "question", "answer")
        q = _text(d.get("question"), "question")
        ctx = _text(d.get("context"), "context", required=False)
        msgs = [{"role": "system", "content": system_prompt}] if system_prompt else []
        msgs.append({"role": "user", "content": f"Context:\n{ctx}\n\nQuestion: {q}" if ctx.strip() else q})
        msgs.append({"role": "assistant", "content": _text(d.get("answer"), "answer")})
        return {"messages": msgs}
    if fmt == "prompt_completion":
        _need(d, "prompt", "completion")
        msgs = [{"role": "system", "content": system_prompt}] if system_prompt else []
        msgs += [
            {"role": "user", "content": _text(d.get("prompt"), "prompt")},
            {"role": "assistant", "content": _text(d.get("completion"), "completion")},
        ]
        return {"messages": msgs}
    if fmt == "sharegpt":
        conv = d.get("conversations")
        if not isinstance(conv, list) or not conv:
            raise RowError("field 'conversations' must be a non-empty list")
        msgs = []
        for i, turn in enumerate(conv):
            if not isinstance(turn, dict) or "from" not in turn or "value" not in turn:
                raise RowError(f"conversations[{i}] needs 'from' and 'value'")
            role = SHAREGPT_ROLES.get(str(turn["from"]).lower())
            if role is None:
                raise RowError(f"conversations[{i}]: unknown role {turn['from']!r}")
            msgs.append({"role": role, "content": _text(turn["value"], f"conversations[{i}].value")})
        if system_prompt and msgs[0]["role"] != "system":
            msgs.insert(0, {"role": "system", "content": system_prompt})
        return _checked({"messages": msgs, **_tools(d)})
    if fmt == "messages":
        raw = d.get("messages")
        if not isinstance(raw, list) or not raw:
            raise RowError("field 'messages' must be a non-empty list")
        msgs = []
        for i, m in enumerate(raw):
            if not isinstance(m, dict) or "role" not in m:
                raise RowError(f"messages[{i}] needs 'role' and 'content'")
            role = str(m["role"]).lower()
            if role == "developer":
                role = "system"
            if role not in MESSAGE_ROLES:
                raise RowError(f"messages[{i}]: unknown role {m['role']!r}")
            msgs.append({"role": role, "content": _content(m.get("content"), i)})
        if system_prompt and msgs[0]["role"] != "system":
            msgs.insert(0, {"role": "system", "content": system_prompt})
        return _checked({"messages": msgs, **_tools(d)})
    raise RowError(f"unknown format {fmt!r}")


def _content(c: Any, i: int) -> str:
    if isinstance(c, str):
        return c
    if isinstance(c, list):
        parts = []
        for p in c:
            if isinstance(p, str):
                parts.append(p)
            elif isinstance(p, dict) and p.get("type") in ("text", "input_text", "output_text"):
                parts.append(_text(p.get("text"), f"messages[{i}].content.text"))
            else:
                kind = p.get("type") if isinstance(p, dict) else type(p).__name__
                raise RowError(f"messages[{i}]: content part of type {kind!r} is not supported (text only)")
        return "".join(parts)
    if c is None:
        raise RowError(f"messages[{i}]: missing 'content'")
    raise RowError(f"messages[{i}].content is {type(c).__name__}, expected text or a list of parts")


def _tools(d: dict) -> dict:
    t = d.get("tools")
    if t is None:
        return {}
    if isinstance(t, str):
        try:
            t = json.loads(t)
        except ValueError:
            raise RowError("field 'tools' is not valid JSON") from None
    if not isinstance(t, list):
        raise RowError("field 'tools' must be a list")
    return {"tools": json.dumps(t, ensure_ascii=False)}


def _checked(rec: dict) -> dict:
    msgs = rec["messages"]
    if not any(m["role"] == "assistant" and m["content"].strip() for m in msgs):
        raise RowError("no assistant answer to learn from")
    while msgs and msgs[-1]["role"] != "assistant":
        msgs.pop()  # a trailing question without an answer teaches nothing
    return rec
