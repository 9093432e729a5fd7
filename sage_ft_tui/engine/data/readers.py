"""Reading data files into rows, each with its file:line (or file[index], file:row N).

JSON, JSON lines, CSV, parquet, plain text; folders are expanded. Torch-free; pyarrow
only for parquet. What a row *means* (its format) is formats.py's business.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from sage_ft_tui.engine.errors import SageError

# The one list of data-file suffixes (the wizard's file picker imports it).
DATA_SUFFIXES = (".json", ".jsonl", ".csv", ".tsv", ".parquet", ".txt", ".md")


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
            ".tsv": _read_tsv,
            ".parquet": _read_parquet,
            ".txt": _read_txt,
            ".md": _read_txt,
        }[f.suffix.lower()]
        for item in reader(f):
            if isinstance(item, BadRow):
                res.bad.append(item)
            else:
                res.rows.append(item)
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
        except json.JSONDecodeError as e:
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
    except json.JSONDecodeError as e:
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


def _read_tsv(f: Path) -> Iterator[Row | BadRow]:
    return _read_csv(f, delimiter="\t")


def _read_csv(f: Path, delimiter: str = ",") -> Iterator[Row | BadRow]:
    text = _decode(f)
    rdr = csv.reader(text.splitlines(keepends=True), delimiter=delimiter)
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
    buf: list[str] = []
    line, start = 1, 1
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
