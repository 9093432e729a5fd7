"""Reading data files into rows, each with its file:line (or file[index], file:row N).

JSON, JSON lines, CSV/TSV, parquet, plain text; folders are expanded; gzip, bz2
and xz (zstd with `zstandard`) are recognised by their magic bytes, whatever the suffix
says. Only regular files are opened (a FIFO or device would block or never end). A row
nested deeper than MAX_JSON_DEPTH is one bad row, never a RecursionError. Torch-free;
pyarrow only for parquet. What a row *means* (its format) is formats.py's business.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from sage_ft_tui.engine.data.parsers import read_csv, read_json, read_jsonl, read_parquet, read_tsv, read_txt
from sage_ft_tui.engine.data.rows import BadRow, Row
from sage_ft_tui.engine.errors import SageError

# The one list of data-file suffixes (the wizard's file picker imports it).
DATA_SUFFIXES = (".json", ".jsonl", ".csv", ".tsv", ".parquet", ".txt")
# A data file may carry one of these after its data suffix (rows.jsonl.gz).
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst")
# magic bytes → (name, how to undo it by hand)
_MAGIC = (
    (b"\x1f\x8b", "gzip", "gunzip"),
    (b"BZh", "bzip2", "bunzip2"),
    (b"\xfd7zXZ\x00", "xz", "unxz"),
    (b"\x28\xb5\x2f\xfd", "zstd", "zstd -d"),
    (b"PK\x03\x04", "zip", "unzip"),
    (b"7z\xbc\xaf\x27\x1c", "7z", "7z x"),
)


@dataclass
class ReadResult:
    rows: list[Row] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    same_file_twice: list[str] = field(default_factory=list)  # paths given again (read once)


def data_suffix(name: str) -> str:
    """The data suffix of a file name, past a compression suffix: rows.jsonl.gz → .jsonl."""
    low = name.lower()
    for c in COMPRESSED_SUFFIXES:
        if low.endswith(c):
            low = low[: -len(c)]
            break
    return os.path.splitext(low)[1]


def is_data_name(name: str) -> bool:
    return data_suffix(name) in DATA_SUFFIXES


# ---- finding the files -----------------------------------------------------------


def _kind_of(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _stat(p: Path, raw: str) -> os.stat_result:
    try:
        return os.stat(p)
    except FileNotFoundError:
        raise SageError(
            f"data path {raw} does not exist",
            hint="check the path (relative paths are from the current folder)",
            kind="data",
        ) from None
    except PermissionError:
        raise SageError(
            f"cannot read data path {raw}: permission denied",
            hint="check its permissions (and those of the folders above it)",
            kind="data",
        ) from None
    except OSError as e:
        raise SageError(f"cannot read data path {raw}: {e.strerror}", hint="check the path", kind="data") from None


def expand_paths(paths: list[str]) -> list[Path]:
    out: list[Path] = []
    for raw in paths:
        p = Path(raw).expanduser()
        st = _stat(p, raw)
        if stat.S_ISDIR(st.st_mode):
            try:
                found = sorted(
                    f
                    for f in p.rglob("*")
                    if is_data_name(f.name)
                    and not any(part.startswith(".") for part in f.relative_to(p).parts)
                    and f.is_file()  # regular files only: a FIFO in a folder is left alone
                )
            except PermissionError as e:
                raise SageError(
                    f"cannot list data folder {e.filename or raw}: permission denied",
                    hint="check its permissions",
                    kind="data",
                ) from None
            if not found:
                raise SageError(
                    f"data folder {raw} holds no data files",
                    hint=f"put {', '.join(DATA_SUFFIXES)} files in it",
                    kind="data",
                )
            out.extend(found)
        elif not stat.S_ISREG(st.st_mode):
            raise SageError(
                f"{raw} is {_kind_of(st.st_mode)}, not a data file",
                hint="give a regular file (save the stream to a file first)",
                kind="data",
            )
        else:
            if not is_data_name(p.name):
                raise SageError(
                    f"{raw}: unsupported file type {p.suffix or '(none)'!r}",
                    hint=f"use one of {', '.join(DATA_SUFFIXES)} (optionally compressed: {', '.join(COMPRESSED_SUFFIXES)})",
                    kind="data",
                )
            out.append(p)
    return out


def read_files(paths: list[str]) -> ReadResult:
    res = ReadResult()
    seen: set[tuple[int, int]] = set()
    for f in expand_paths(paths):
        st = os.stat(f)
        if (st.st_dev, st.st_ino) in seen:
            res.same_file_twice.append(str(f))  # the same file (or a link to it) given again
            continue
        seen.add((st.st_dev, st.st_ino))
        name = str(f)
        res.files.append(name)
        for item in read_file(f):
            item.file = name
            if isinstance(item, BadRow):
                res.bad.append(item)
            else:
                res.rows.append(item)
    return res


def read_file(f: Path) -> Iterator[Row | BadRow]:
    data = _read_bytes(f)
    if data.startswith(b"PAR1") or data_suffix(f.name) == ".parquet":
        return read_parquet(f, data)
    reader = {
        ".jsonl": read_jsonl,
        ".json": read_json,
        ".csv": read_csv,
        ".tsv": read_tsv,
        ".txt": read_txt,
    }[data_suffix(f.name)]
    return reader(f, data)


def _read_bytes(f: Path) -> bytes:
    """The file's bytes, decompressed when its magic bytes say it is compressed."""
    try:
        with open(f, "rb") as fh:
            data = fh.read()
    except PermissionError:
        raise SageError(
            f"cannot read data file {f}: permission denied", hint="check its permissions (chmod u+r)", kind="data"
        ) from None
    except OSError as e:
        raise SageError(f"cannot read data file {f}: {e.strerror}", hint="check the file", kind="data") from None
    for magic, name, undo in _MAGIC:
        if not data.startswith(magic):
            continue
        try:
            if name == "gzip":
                return gzip.decompress(data)
            if name == "bzip2":
                return bz2.decompress(data)
            if name == "xz":
                return lzma.decompress(data)
            if name == "zstd":
                try:
                    import zstandard
                except ImportError:
                    raise SageError(
                        f"{f}: compressed with zstd, which needs the zstandard package",
                        hint=f"decompress it first (`{undo} {f}`) or `pip install zstandard`",
                        kind="data",
                    ) from None
                return zstandard.ZstdDecompressor().decompressobj().decompress(data)
        except SageError:
            raise
        except Exception as e:
            raise SageError(
                f"{f}: a broken {name} file ({str(e).splitlines()[0][:100] if str(e) else type(e).__name__})",
                hint=f"check the file (`{undo} -t` tests it), or give the decompressed file",
                kind="data",
            ) from None
        raise SageError(f"{f}: a {name} archive, not a data file", hint=f"unpack it (`{undo}`) and give the files")
    return data
