"""The built zoo, once per machine and zoo version: `ensure_zoo()`.

The folders live under `$SAGE_FT_ZOO_CACHE` (else `~/.cache/sage-ft-tui`) in `zoo-<key>`, the key
hashing the code and templates of tests/zoo, the bundled text the vocabularies learn from and the versions
of the libraries that write the files; a change to any of them builds a new zoo. The zoo is
built into a temporary sibling and renamed into place, under a lock, so two pytest processes
starting together build it once and neither sees a half-built folder.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.zoo.families import FAMILIES, Family

ZOO = Path(__file__).resolve().parent
SAMPLES = ZOO.parents[1] / "sage_ft_tui" / "samples"
DONE = "zoo-complete"


@dataclass(frozen=True)
class ZooModel:
    name: str
    family: Family
    path: Path


def zoo_key() -> str:
    from importlib.metadata import version

    h = hashlib.sha256()
    files = sorted(p for p in ZOO.rglob("*") if p.suffix in (".py", ".jinja"))  # not the .md notes
    files += sorted(p for p in SAMPLES.rglob("*") if p.is_file())
    for p in files:
        h.update(str(p.relative_to(ZOO.parents[1])).encode() + b"\0" + p.read_bytes() + b"\0")
    for lib in ("transformers", "tokenizers", "sentencepiece", "torch", "safetensors"):
        try:
            h.update(f"{lib}={version(lib)}\0".encode())
        except Exception:
            h.update(f"{lib}=?\0".encode())
    return h.hexdigest()[:16]


def zoo_root() -> Path:
    base = os.environ.get("SAGE_FT_ZOO_CACHE") or str(Path.home() / ".cache" / "sage-ft-tui")
    return Path(base) / f"zoo-{zoo_key()}"


def ensure_zoo() -> dict[str, Path]:
    """Every family's folder, built on first use (about 10 s on 2 cores)."""
    from tests.zoo.build import build_zoo

    root = zoo_root()
    _ensure(root, build_zoo, list(FAMILIES))
    return {name: root / name for name in FAMILIES}


def ensure_vlm_zoo() -> dict[str, Path]:
    """Every vision-language family's folder (tests/zoo/vlm.py), built on first use beside the
    text zoo, in `vlm-<key>` (a few seconds)."""
    from tests.zoo.vlm import VISION_FAMILIES, build_vlm_zoo

    root = zoo_root().with_name("vlm-" + zoo_key())
    _ensure(root, build_vlm_zoo, list(VISION_FAMILIES))
    return {name: root / name for name in VISION_FAMILIES}


def _ensure(root: Path, build, names: list[str]) -> None:
    if not (root / DONE).exists():
        root.parent.mkdir(parents=True, exist_ok=True)
        with open(root.parent / f".{root.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits, then finds it built
            if not (root / DONE).exists():
                _build_into(root, build, names)


def _build_into(root: Path, build, names: list[str]) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    tmp.chmod(0o755)  # mkdtemp's 0700 would hide a shared cache from other users
    try:
        build(tmp)
        (tmp / DONE).write_text("\n".join(names) + "\n", encoding="utf-8")
        if root.exists():  # a stale half-made folder from a killed build without the lock
            shutil.rmtree(root)
        os.replace(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
