"""`export_run`: the run's merged model (merged first when there is none) → GGUF + Ollama
Modelfile, or an HF folder; a round-trip check re-loads the GGUF with transformers and
compares its logits with the merged model's, like merge's self-check."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.fsutil import atomic_write_json, read_json
from sage_ft_tui.engine.runs.layout import RunLayout

Progress = Callable[[str, dict], None]
FORMATS = ("gguf", "hf")
# Round-trip tolerance on max |logit diff| / max |logit| (f16 storage; q8_0 blocks of 32).
TOLERANCE = {"f16": 1e-2, "q8_0": 6e-2}


def _ours(lay: RunLayout) -> set[str]:
    """Names in export/ that an earlier export wrote (only those may be replaced)."""
    rep = read_json(lay.export_report, {}) or {}
    return set(rep.get("files") or [])


def _claim(lay: RunLayout, names: list[str], force: bool) -> None:
    ours = _ours(lay)
    for n in names:
        p = lay.export_dir / n
        if not p.exists():
            continue
        if n not in ours:
            raise SageError(f"{p} exists and was not written by export", hint="move it away; export never replaces it")
        if not force:
            raise SageError(f"{p} already exists", hint="pass --force to replace it (the new file is written first)")


def _ensure_merged(run: Path, say: Progress) -> Path:
    from sage_ft_tui.engine.deploy.merge import default_output, merge_run, merged_ok

    merged = default_output(run)
    if merged_ok(merged):
        return merged
    if merged.exists() and any(merged.iterdir()):
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
    from sage_ft_tui.engine.paths import resolve_run

    say = progress or (lambda stage, info: None)
    if fmt not in FORMATS:
        raise SageError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}", hint="e.g. --format gguf")
    if fmt == "gguf":
        from sage_ft_tui.engine.export.to_gguf import refuse_quant

        refuse_quant(quant)
    if push_to_hub and fmt != "hf":
        raise SageError("--push-to-hub uploads the HF folder", hint="use it with --format hf")
    token = _hub_token() if push_to_hub else None
    run = resolve_run(run)
    lay = RunLayout(run)
    names = [lay.export_gguf(quant).name, lay.modelfile.name] if fmt == "gguf" else [lay.export_hf.name]
    if lay.export_dir.exists() and not lay.export_dir.is_dir():
        raise SageError(f"{lay.export_dir} is not a folder", hint="move it away")
    lay.export_dir.mkdir(exist_ok=True)
    _claim(lay, names, force)
    t0 = time.time()
    merged = _ensure_merged(run, say)
    if fmt == "gguf":
        entry = _export_gguf(run, lay, merged, quant, check, say)
    else:
        entry = _export_hf(lay, merged, max_shard_size, say)
        if push_to_hub and token:
            say("push", {"repo": push_to_hub})
            entry["pushed_to"] = _push(lay.export_hf, push_to_hub, token)
    entry.update(seconds=round(time.time() - t0, 3), created=time.time())
    _record(lay, entry, names)
    say("done", {"path": entry["path"]})
    return entry


def _export_gguf(run: Path, lay: RunLayout, merged: Path, quant: str, check: bool, say: Progress) -> dict:
    from sage_ft_tui.engine.data.template import chat_tokenizer
    from sage_ft_tui.engine.export.modelfile import modelfile
    from sage_ft_tui.engine.export.to_gguf import write_gguf

    chat = chat_tokenizer(str(merged))
    target = lay.export_gguf(quant)
    name = target.name
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=lay.export_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        info = write_gguf(
            merged, tmp, quant=quant, name=run.name, chat_template=chat.template if chat.has_template else None, say=say
        )
        entry: dict = {"name": name, "format": "gguf", "quant": quant, "path": str(target)}
        entry.update(bytes=tmp.stat().st_size, **info)
        if check:
            say("check", {})
            rt = entry["round_trip"] = round_trip(merged, tmp, quant)
            if not rt["passed"]:
                raise SageError(
                    f"the GGUF round-trip check failed (max relative logit difference "
                    f"{rt['max_rel_diff']:.3g} > {rt['tolerance']})",
                    kind="internal",
                    hint="nothing was written; report this with the run's merge_report.json",
                )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    stop = [chat.eos_token] if chat.eos_token else []
    lay.modelfile.write_text(modelfile(name, chat, stop), encoding="utf-8")
    entry["modelfile"] = str(lay.modelfile)
    return entry


def round_trip(merged: Path, gguf_path: Path, quant: str) -> dict:
    """Load the GGUF back with transformers (dequantized) and compare logits with the merged model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sage_ft_tui.engine.data.template import chat_tokenizer
    from sage_ft_tui.engine.deploy.merge import _logits, _probe_ids

    tok = AutoTokenizer.from_pretrained(str(merged))
    ids = _probe_ids(tok, chat_tokenizer(str(merged)).template)
    ref_model = AutoModelForCausalLM.from_pretrained(str(merged), dtype=torch.float32).eval()
    ref = _logits(ref_model, ids)
    del ref_model
    back = AutoModelForCausalLM.from_pretrained(
        str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32
    ).eval()
    got = _logits(back, ids)
    scale = float(ref.abs().max().clamp_min(1e-6))
    rel = float((got - ref).abs().max()) / scale
    top1 = float((got.argmax(-1) == ref.argmax(-1)).float().mean())
    tol = TOLERANCE.get(quant, 6e-2)
    text = "Hello, world! What is 2 + 2?"
    try:
        gtok = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        tokenizer_same = (
            gtok(text, add_special_tokens=False)["input_ids"] == tok(text, add_special_tokens=False)["input_ids"]
        )
    except Exception as e:  # transformers cannot rebuild every tokenizer from GGUF; say so
        tokenizer_same = f"not checked: {type(e).__name__}"
    return {
        "passed": bool(rel <= tol and torch.isfinite(got).all()),
        "max_rel_diff": rel,
        "tolerance": tol,
        "top1_agreement": top1,
        "probe_tokens": int(ids.shape[1]),
        "tokenizer_same": tokenizer_same,
        "note": "GGUF re-loaded by transformers (dequantized) vs the merged folder, same probe",
    }


def _export_hf(lay: RunLayout, merged: Path, shard: str, say: Progress) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    say("load", {"model": str(merged)})
    tmp = Path(tempfile.mkdtemp(prefix=".hf.tmp-", dir=lay.export_dir))
    try:
        model = AutoModelForCausalLM.from_pretrained(str(merged), dtype="auto")
        say("save", {"max_shard_size": shard})
        model.save_pretrained(str(tmp), safe_serialization=True, max_shard_size=shard)
        AutoTokenizer.from_pretrained(str(merged)).save_pretrained(str(tmp))
        for extra in ("chat_template.jinja", "generation_config.json"):
            if (merged / extra).is_file() and not (tmp / extra).exists():
                shutil.copy2(merged / extra, tmp / extra)
        del model, torch
        old = None
        if lay.export_hf.exists():
            old = lay.export_dir / f".hf.old-{os.getpid()}"
            os.replace(lay.export_hf, old)
        os.replace(tmp, lay.export_hf)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
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
