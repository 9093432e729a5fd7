"""`export_run`: the run's merged model (merged first when there is none) → GGUF + Ollama
Modelfile, or an HF folder. `export_gguf` does the GGUF part for any merged folder.

A GGUF is built under a temporary name beside its target, checked by llama.cpp itself
(export.check) and only then moved into place; the Modelfile is written only when its
template renders like the model's chat template (export.modelfile). A failure at any step
leaves what was on disk as it was."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

from sage_ft_tui.engine.data.template import chat_tokenizer
from sage_ft_tui.engine.deploy.artifacts import config_dtype, default_output, merged_ok
from sage_ft_tui.engine.deploy.merge import merge_run
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.export import llama
from sage_ft_tui.engine.export.check import add_bos_of, check_gguf, unchecked_note
from sage_ft_tui.engine.export.formats import EXPORT_FORMATS
from sage_ft_tui.engine.export.modelfile import derive, modelfile
from sage_ft_tui.engine.export.to_gguf import QUANTIZER_TYPES, check_quant, write_gguf
from sage_ft_tui.engine.fsutil import (
    GiB,
    MiB,
    atomic_write_json,
    atomic_write_text,
    fmt_bytes,
    free_bytes,
    is_disk_full,
    read_json,
)
from sage_ft_tui.engine.models.build_lock import MODEL_BUILD
from sage_ft_tui.engine.models.resolve import TOKENIZER_FILES
from sage_ft_tui.engine.models.vision import auto_class, is_vision
from sage_ft_tui.engine.paths import resolve_run
from sage_ft_tui.engine.runs.layout import RunLayout

Progress = Callable[[str, dict], None]
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": MiB // 1024, "MIB": MiB, "GIB": GiB}


def shard_bytes(text: str) -> int:
    """--max-shard-size as bytes ("2GB", "500MB", "1GiB", or a number of bytes)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(text))
    unit = m.group(2).upper() if m else ""
    if not m or unit not in _UNITS or float(m.group(1)) * _UNITS[unit] < 1:
        raise SageError(
            f"--max-shard-size {text!r} is not a size",
            hint="give a number with KB, MB, GB (or KiB, MiB, GiB), e.g. --max-shard-size 2GB",
        )
    return int(float(m.group(1)) * _UNITS[unit])


def _ours(lay: RunLayout) -> set[str]:
    """Names in export/ that an earlier export wrote (only those may be replaced)."""
    rep = read_json(lay.export_report, {}) or {}
    return set(rep.get("files") or [])


def _claim(lay: RunLayout, names: list[str], force: bool) -> None:
    """Refuse to touch a file export did not write; an export of ours is replaced only
    with --force, except the Modelfile, which always follows the latest GGUF."""
    ours = _ours(lay)
    for n in names:
        p = lay.export_dir / n
        if not p.exists() and not p.is_symlink():
            continue
        if n not in ours:
            raise SageError(f"{p} exists and was not written by export", hint="move it away; export never replaces it")
        if not force and n != lay.modelfile.name:
            raise SageError(f"{p} already exists", hint="pass --force to replace it (the new file is written first)")


def _ensure_merged(run: Path, say: Progress) -> Path:
    merged = default_output(run)
    if merged_ok(merged):
        return merged
    if merged.exists() and (not merged.is_dir() or any(merged.iterdir())):
        raise SageError(
            f"{merged} did not pass the merge self-check (or has no report)",
            hint=f"merge again: `sage-ft-tui merge {run.name} --force`",
        )
    say("merge", {"output": str(merged)})
    merge_run(run, progress=lambda stage, info: say("merge", {"merge_stage": stage}))
    return merged


def _record(lay: RunLayout, entry: dict, files: list[str]) -> dict:
    rep = read_json(lay.export_report, {}) or {}
    rep["files"] = sorted(set(rep.get("files") or []) | set(files))
    rep.setdefault("exports", {})[entry["name"]] = entry
    atomic_write_json(lay.export_report, rep)
    return rep


def export_run(
    run: Path | str,
    *,
    fmt: str = "gguf",
    quant: str = "q8_0",
    force: bool = False,
    max_shard_size: str = "2GB",
    push_to_hub: Optional[str] = None,
    check: bool = True,
    progress: Optional[Progress] = None,
) -> dict:
    """Export and verify; returns this export's entry of export/export_report.json."""
    say = progress or (lambda stage, info: None)
    if fmt not in EXPORT_FORMATS:
        raise SageError(f"--format {fmt!r} is not one of {', '.join(EXPORT_FORMATS)}", hint="e.g. --format gguf")
    shard = shard_bytes(max_shard_size) if fmt == "hf" else 0
    if fmt == "gguf":
        check_quant(quant)
    if push_to_hub and fmt != "hf":
        raise SageError("--push-to-hub uploads the HF folder", hint="use it with --format hf")
    token = _hub_token() if push_to_hub else None
    run = resolve_run(run)
    lay = RunLayout(run)
    names = [lay.export_gguf(quant).name, lay.modelfile.name] if fmt == "gguf" else [lay.export_hf.name]
    if lay.export_dir.exists() and not lay.export_dir.is_dir():
        raise SageError(f"{lay.export_dir} is not a folder", hint="move it away; export writes its files there")
    try:
        lay.export_dir.mkdir(exist_ok=True)
    except OSError as e:
        raise SageError(
            f"cannot create {lay.export_dir}: {e.strerror}", kind="disk", hint="check the run folder's permissions"
        ) from None
    _claim(lay, names, force)
    t0 = time.time()
    merged = _ensure_merged(run, say)
    if fmt == "gguf":
        entry = export_gguf(
            merged, lay.export_gguf(quant), quant, modelfile_path=lay.modelfile, name=run.name, check=check, say=say
        )
        written = [lay.export_gguf(quant).name] + ([lay.modelfile.name] if entry.get("modelfile") else [])
    else:
        entry = _export_hf(lay, merged, shard, say)
        written = [lay.export_hf.name]
        if push_to_hub and token:
            say("push", {"repo": push_to_hub})
            entry["pushed_to"] = _push(lay.export_hf, push_to_hub, token)
    entry.update(seconds=round(time.time() - t0, 3), created=time.time())
    _record(lay, entry, written)
    say("done", {"path": entry["path"]})
    return entry


def _need_bytes(merged: Path, quant: str) -> int:
    """About what a GGUF of `quant` takes (and its 16-bit intermediate for a K-quant)."""
    weights = sum(f.stat().st_size for f in merged.glob("*.safetensors"))
    per = {"f32": 4.0, "f16": 2.0, "bf16": 2.0, "q8_0": 1.07, "q6_k": 0.83, "q5_k_m": 0.7, "q4_k_m": 0.6}[quant]
    src = 4.0 if "float32" in config_dtype(merged) else 2.0
    params = weights / src
    need = params * per
    if quant in QUANTIZER_TYPES:
        need += params * 2.0
    return int(need * 1.05) + 16 * MiB


def export_gguf(
    merged: Path,
    target: Path,
    quant: str = "q8_0",
    *,
    modelfile_path: Optional[Path] = None,
    name: Optional[str] = None,
    check: bool = True,
    say: Progress = lambda stage, info: None,
) -> dict:
    """A merged HF folder → the GGUF `target` (built beside it, checked by llama.cpp, then
    moved in place) and, when `modelfile_path` is given and the chat template can be
    expressed in Ollama's template language, an Ollama Modelfile there. Returns the entry
    export_report.json records. Raises SageError (nothing written) on any failure."""
    merged, target = Path(merged), Path(target)
    if not (merged / "config.json").is_file():
        raise SageError(f"{merged} is not a model folder (no config.json)", where=str(merged), kind="model")

    if is_vision(merged):
        # llama.cpp runs VLMs as a text GGUF plus an `mmproj` GGUF of the vision tower; writing
        # and checking that pair is not built here yet, and a text-only GGUF would drop the images.
        raise SageError(
            "GGUF export of a vision-language model (its text model + mmproj vision file) is not supported yet",
            where=str(merged),
            kind="model",
            hint="export --format hf, and convert with llama.cpp's convert_hf_to_gguf.py (--mmproj) yourself",
        )
    need, free = _need_bytes(merged, quant), free_bytes(target.parent)
    if free < need:
        raise SageError(
            f"not enough disk space for the {quant} GGUF: about {fmt_bytes(need)} needed, {fmt_bytes(free)} free",
            where=str(target.parent),
            kind="disk",
            hint="free space there, or export a smaller --quant",
        )
    chat = chat_tokenizer(str(merged))
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    entry: dict = {"name": target.name, "format": "gguf", "quant": quant, "path": str(target)}
    try:
        checked = check and llama.available()

        def judge(path: Path, kind: str) -> dict:
            return check_gguf(path, merged, chat, kind, say=say)

        info = write_gguf(merged, tmp, quant, name=name or merged.name, say=say, check_16bit=judge if checked else None)
        entry.update(bytes=tmp.stat().st_size, **info)
        if checked:
            entry["check"] = check_gguf(tmp, merged, chat, quant, say=say)
        elif check:
            entry["check"] = {"by": None, "note": unchecked_note()}
        else:
            entry["check"] = {"by": None, "note": "not checked (--no-check)"}
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as e:
        if is_disk_full(e):
            raise SageError(
                f"the disk filled up writing {target.name}",
                where=str(target.parent),
                kind="disk",
                hint="free space, then export again",
            ) from None
        raise
    finally:
        tmp.unlink(missing_ok=True)
    if modelfile_path is not None:
        derived = derive(chat, add_bos_of(entry, entry.get("check")))
        entry["modelfile_notes"] = derived.notes
        entry["system_prompt"] = derived.system
        entry["stop"] = derived.stop
        if derived.template is not None:
            atomic_write_text(modelfile_path, modelfile(target.name, derived))
            entry["modelfile"] = str(modelfile_path)
    return entry


def _export_hf(lay: RunLayout, merged: Path, shard: int, say: Progress) -> dict:
    import torch
    from transformers import AutoTokenizer

    need = sum(f.stat().st_size for f in merged.glob("*.safetensors")) + 16 * MiB
    if free_bytes(lay.export_dir) < need:
        raise SageError(
            f"not enough disk space for the HF folder: about {fmt_bytes(need)} needed, "
            f"{fmt_bytes(free_bytes(lay.export_dir))} free",
            where=str(lay.export_dir),
            kind="disk",
            hint="free space there, then export again",
        )
    say("load", {"model": str(merged)})
    tmp = Path(tempfile.mkdtemp(prefix=".hf.tmp-", dir=lay.export_dir))
    try:
        with MODEL_BUILD:
            model = auto_class(merged).from_pretrained(str(merged), dtype="auto")
        say("save", {"max_shard_size": fmt_bytes(shard)})
        model.save_pretrained(str(tmp), safe_serialization=True, max_shard_size=shard)
        AutoTokenizer.from_pretrained(str(merged)).save_pretrained(str(tmp))
        for extra in (*TOKENIZER_FILES, "generation_config.json"):  # a VLM's processor files too
            if (merged / extra).is_file() and not (tmp / extra).exists():
                shutil.copy2(merged / extra, tmp / extra)
        del model, torch
        old = None
        if lay.export_hf.exists():
            old = lay.export_dir / f".hf.old-{os.getpid()}"
            os.replace(lay.export_hf, old)
        try:
            os.replace(tmp, lay.export_hf)
        except OSError:
            if old is not None:
                os.replace(old, lay.export_hf)  # the earlier export back in place
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        if is_disk_full(e):
            raise SageError(
                "the disk filled up writing the HF folder",
                where=str(lay.export_dir),
                kind="disk",
                hint="free space, then export again",
            ) from None
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    shards = sorted(p.name for p in lay.export_hf.glob("*.safetensors"))
    size = sum((lay.export_hf / s).stat().st_size for s in shards)
    return {"name": lay.export_hf.name, "format": "hf", "path": str(lay.export_hf), "shards": shards, "bytes": size}


def _hub_token() -> str:
    try:
        from huggingface_hub import get_token
    except ImportError:
        raise SageError("huggingface_hub is not installed", hint="pip install huggingface_hub") from None
    token = get_token()
    if not token:
        raise SageError(
            "--push-to-hub needs a Hugging Face token, and none is configured",
            hint="run `hf auth login` (or set HF_TOKEN), then export again",
        )
    return token


def _push(folder: Path, repo: str, token: str) -> str:
    from huggingface_hub import HfApi

    try:
        api = HfApi(token=token)
        api.create_repo(repo, private=True, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo, commit_message="sage-ft-tui export")
    except Exception as e:
        raise SageError(
            f"push to {repo} failed: {type(e).__name__}: {str(e)[:200]}", hint="check the token and repo name"
        ) from None
    return repo
