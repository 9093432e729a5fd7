"""Atomic writes, disk-space checks, and the one byte formatter (fmt_bytes) and units."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

MiB = 1024**2
GiB = 1024**3


def atomic_write_text(path: Path, text: str, mode: int = 0o644) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_json(path: Path, obj, mode: int = 0o644) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=str) + "\n", mode)


def read_json(path: Path, default=None):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError, UnicodeDecodeError):
        return default


def free_bytes(path: Path) -> int:
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def is_disk_full(exc: BaseException | None) -> bool:
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            return True
        if "No space left on device" in str(exc) or "file size limit" in str(exc).lower():
            return True
        # numpy's tofile (the GGUF writer) reports a short write without an errno
        if isinstance(exc, OSError) and re.fullmatch(r"\d+ requested and \d+ written", str(exc)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def fmt_duration(s: float | None) -> str:
    """3725 -> "1h02m"; None (unknown) -> "—"."""
    if s is None:
        return "—"
    s = int(s)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600:02d}h"


def fmt_bytes(n: float | None) -> str:
    """1536 -> "1.5 KiB"; None (unknown) -> "?"."""
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def flock_held(path: str | os.PathLike) -> bool:
    """True while another process holds an flock on `path` (a run's lock, the queue scheduler's)."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def flock_wait(fd: int, wait: float) -> bool:
    """Take an exclusive flock on `fd`, waiting up to `wait` seconds; False if it stayed held
    (the caller says by whom, in its own words)."""
    import fcntl
    import time

    deadline = time.time() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.time() > deadline:
                return False
            time.sleep(0.05)
