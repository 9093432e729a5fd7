"""Parsing a data file's bytes into rows, one parser per file kind: JSON lines, JSON,
CSV/TSV, parquet, plain text (readers.py picks one by suffix and magic bytes). A row
nested deeper than MAX_JSON_DEPTH is one bad row, never a RecursionError; pyarrow is
imported only for parquet.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from pathlib import Path
from typing import Any, Iterator

from sage_ft_tui.engine.data.rows import BadRow, Row, shown
from sage_ft_tui.engine.errors import SageError

# Deeper than any real row (tool-call arguments included); well under Python's recursion limit.
MAX_JSON_DEPTH = 100
# A CSV whose quoting breaks more often than this is refused rather than read line by line.
MAX_CSV_RESTARTS = 200

_LINE_END = re.compile(rb"\r\n|\r|\n")


# ---- JSON ------------------------------------------------------------------------


def _too_deep(obj: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    stack = [(obj, 1)]
    while stack:
        o, d = stack.pop()
        if d > limit:
            return True
        if isinstance(o, dict):
            stack.extend((v, d + 1) for v in o.values())
        elif isinstance(o, list):
            stack.extend((v, d + 1) for v in o)
    return False


def _loads_row(raw: str) -> Any:
    """json.loads with the depth limit; raises ValueError with a reason."""
    n = raw.count("[") + raw.count("{")
    try:
        obj = json.loads(raw)
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    if n > MAX_JSON_DEPTH and _too_deep(obj):  # the walk only runs on the rare row with many brackets
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    return obj


def read_jsonl(f: Path, data: bytes) -> Iterator[Row | BadRow]:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    # \n, \r\n and a bare \r (old Mac files, mixed endings) each end a line: JSON text never
    # holds a raw CR or LF inside a string, so a CR between two objects is a line break.
    lines = _LINE_END.split(data)
    n = len(lines)
    name = str(f)
    for i, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        where = f"{name}:{i}"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            yield BadRow(where, f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1})")
            continue
        try:
            yield Row(where, _loads_row(text), name)
        except json.JSONDecodeError as e:
            torn = i == n or (i == n - 1 and not lines[-1].strip())
            yield BadRow(
                where,
                "torn last line (incomplete JSON)"
                if torn and not data.endswith((b"\n", b"\r"))
                else f"not valid JSON ({e.msg} at column {e.colno})",
            )
        except ValueError as e:
            yield BadRow(where, f"not usable JSON ({e})")


def _decode(f: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")  # a BOM is fine
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise SageError(
            f"{f}:{line}: not valid UTF-8 (byte 0x{data[e.start]:02x})", hint="save the file as UTF-8", kind="data"
        ) from None


def read_json(f: Path, data: bytes) -> Iterator[Row | BadRow]:
    text = _decode(f, data)
    if not text.strip():
        return
    try:
        obj = json.loads(text)
    except RecursionError:
        raise SageError(
            f"{f}: JSON nested deeper than Python can read",
            hint=f"rows may nest at most {MAX_JSON_DEPTH} levels; save one row per line as .jsonl to skip the bad ones",
            kind="data",
        ) from None
    except ValueError as e:
        if text.lstrip().startswith("{") and "\n{" in text:
            yield from read_jsonl(f, data)  # JSON lines saved as .json
            return
        raise SageError(
            f"{f}:{e.lineno}: not valid JSON ({e.msg})",  # type: ignore[attr-defined]
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
        where = f"{f}[{i}]"
        if _too_deep(item, MAX_JSON_DEPTH - 1):
            yield BadRow(where, f"not usable JSON (nested deeper than {MAX_JSON_DEPTH} levels)")
        else:
            yield Row(where, item)


# ---- CSV / TSV -------------------------------------------------------------------


def read_tsv(f: Path, data: bytes) -> Iterator[Row | BadRow]:
    return read_csv(f, data, delimiter="\t")


def _physical_lines(text: str) -> list[str]:
    """The text's lines with their ends: only \n, \r and \r\n end a line (as the csv module
    and editors count them); U+2028, U+0085 and friends inside a cell are text."""
    return io.StringIO(text, newline="").readlines()


def _lines(n: int) -> str:
    return f"{n} line" if n == 1 else f"{n} lines"


def _looks_like_rows(lines: list[str], delimiter: str, ncols: int) -> bool:
    """Every one of these physical lines, read on its own with quotes taken as text, has
    exactly the header's column count: they are rows that a stray quote joined."""
    if ncols < 2:
        return False
    for ln in lines:
        rec = next(csv.reader([ln.rstrip("\r\n")], delimiter=delimiter, quoting=csv.QUOTE_NONE), [])
        if len(rec) != ncols:
            return False
    return True


def _closes_mid_line(last: str, quotechar: str = '"') -> bool:
    """The quoted cell that spans lines closes before the end of its last line (more cells follow)."""
    body = last.rstrip("\r\n")
    i = body.find(quotechar)
    while i != -1 and i + 1 < len(body) and body[i + 1] == quotechar:  # "" is an escaped quote
        i = body.find(quotechar, i + 2)
    return i != -1 and i + 1 < len(body)


def read_csv(f: Path, data: bytes, delimiter: str = ",") -> Iterator[Row | BadRow]:
    """CSV/TSV records with the line each starts on. A quoted cell may hold line breaks (valid
    CSV); a quote that breaks the file's structure never joins or swallows rows silently:
    the record where it opens becomes a bad row naming its line, and reading starts again on
    the next line, so the rows after it are read as rows (strict quoting: text after a
    closing quote, or a quote never closed, is such a break; so is a quoted cell spanning
    lines that each look like a row of their own and closing mid-line)."""
    text = _decode(f, data)
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # a long answer is one cell, not an error
    lines = _physical_lines(text)
    kind = "TSV" if delimiter == "\t" else "CSV"
    if not lines:
        return
    try:
        header = next(csv.reader([lines[0]], delimiter=delimiter, strict=True))
    except (csv.Error, StopIteration) as e:
        raise SageError(
            f"{f}:1: not valid {kind} ({e or 'no header'})", hint="fix the header line", kind="data"
        ) from None
    header = [h.strip() for h in header]
    seen: dict[str, int] = {}
    for i, h in enumerate(header, 1):
        if h in seen:
            raise SageError(
                f"{f}:1: the header names column {shown(h) if h else '(empty)'!r} twice (columns {seen[h]} and {i})",
                hint="rename one of them (or map the one to train on with --set data.field_map.<field>=<column>)",
                kind="data",
            )
        seen[h] = i
    ncols = len(header)
    start = 1  # index into lines of the next record's first line
    restarts = 0
    while start < len(lines):
        # csv.reader over the rest of the lines; line_num counts the physical lines it took.
        rdr = csv.reader(iter(lines[start:]), delimiter=delimiter, strict=True)
        prev = 0
        broken = False
        while True:
            first = start + prev  # 0-based index of this record's first line
            try:
                rec = next(rdr)
            except StopIteration:
                return
            except csv.Error as e:
                eof = "unexpected end of data" in str(e)
                span = rdr.line_num - prev
                why = (
                    "a quote on this line opens a cell that is never closed (it would take the rest of the file: "
                    f"{_lines(len(lines) - first)})"
                    if eof
                    else f"not valid {kind} ({e}; a quote on this line opens a cell"
                    + (f" that runs to line {first + span}" if span > 1 else "")
                    + ")"
                )
                yield BadRow(f"{f}:{first + 1}", why)
                broken = True
                break
            where = f"{f}:{first + 1}"
            took = rdr.line_num - prev
            prev = rdr.line_num
            if not any(c.strip() for c in rec):
                continue
            if took > 1:
                span_lines = lines[first : first + took]
                joined = len(rec) != ncols or _closes_mid_line(span_lines[-1])
                if joined and _looks_like_rows(span_lines, delimiter, ncols):
                    yield BadRow(
                        where,
                        f"lines {first + 1}-{first + took} read as one record: a quote on this line opens a cell "
                        f"that only closes on line {first + took}, and each of those lines looks like a row of its "
                        "own (an unbalanced quote?)",
                    )
                    broken = True
                    break
            if len(rec) != ncols:
                extent = f" (lines {first + 1}-{first + took}: a quoted cell holds line breaks)" if took > 1 else ""
                yield BadRow(where, f"{len(rec)} columns, the header has {ncols}{extent}")
                continue
            yield Row(where, {h: _csv_value(v) for h, v in zip(header, rec)})
        if not broken:
            return
        restarts += 1
        if restarts > MAX_CSV_RESTARTS:
            raise SageError(
                f"{f}:{first + 1}: not valid {kind}: its quoting breaks on more than {MAX_CSV_RESTARTS} records",
                hint='check the quotes of the file (a quote inside a cell is written "" inside a quoted cell), '
                "or save it as .jsonl",
                kind="data",
            )
        start = first + 1  # read again from the line after the one where the break opened


def _csv_value(v: str):
    return None if v.strip().lower() in ("", "nan", "null", "none", "na", "n/a") else v


# ---- parquet, text ---------------------------------------------------------------


def read_parquet(f: Path, data: bytes) -> Iterator[Row | BadRow]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(pa.BufferReader(data))
        items = table.to_pylist()
    except Exception as e:
        raise SageError(
            f"{f}: cannot read parquet ({str(e).splitlines()[0][:120] if str(e) else type(e).__name__})",
            hint="check the file is a valid parquet file",
            kind="data",
        ) from None
    for i, item in enumerate(items):
        yield Row(f"{f}:row {i + 1}", item)


def read_txt(f: Path, data: bytes) -> Iterator[Row | BadRow]:
    text = _decode(f, data)
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # a bare CR ends a line too
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
