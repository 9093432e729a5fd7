"""Merge a run's LoRA adapter into its base model: a standalone model folder to serve.

    base model + adapter (the final one, or checkpoint N / "latest" by step number)
      → merge_and_unload → safetensors shards + tokenizer + chat template + generation
        config (EOS = the token that ends an assistant turn)
      → self-check: the merged folder, re-loaded from disk, must give the same logits as
        base+adapter on a probe input; the result goes into merge_report.json
      → only then does it replace <run>/merged (an old one survives any failure).

Nothing here imports torch at module level; what a merge reads and writes without torch (the
adapter to merge, the merged folder, its report) is in `deploy/artifacts.py`.
"""

from __future__ import annotations

import gc
import os
import resource
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Optional

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.data.template import chat_tokenizer
from sage_ft_tui.engine.deploy.artifacts import (
    DTYPES,
    TOLERANCE,
    CheckpointRef,
    default_output,
    expected_size,
    find_adapter,
    resolve_dtype,
)
from sage_ft_tui.engine.errors import SageError, clip
from sage_ft_tui.engine.fsutil import MiB, atomic_write_json, fmt_bytes, free_bytes, is_disk_full
from sage_ft_tui.engine.models.build_lock import MODEL_BUILD
from sage_ft_tui.engine.models.resolve import TOKENIZER_FILES, model_dir
from sage_ft_tui.engine.models.vision import auto_class
from sage_ft_tui.engine.paths import resolve_run
from sage_ft_tui.engine.runs.layout import MERGED_MARK, RunLayout, merged_mark, merged_report

PROBE_MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Explain in one sentence what a LoRA adapter is, then list three uses."},
]
PROBE_TEXT = "The quick brown fox jumps over the lazy dog. 1 2 3 4 5 — Hello, world!"

Progress = Callable[[str, dict], None]


# ---- the merge ---------------------------------------------------------------------


def _peak_rss() -> int:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(r if sys.platform == "darwin" else r * 1024)


def _device(want: str, size: int) -> str:
    import torch

    if want != "auto":
        return want
    if torch.cuda.is_available():
        try:
            free, _ = torch.cuda.mem_get_info()
            if size * 1.3 < free:
                return "cuda"
        except Exception:
            pass
    return "cpu"


def _probe_ids(tok, chat_template: Optional[str]):
    text = None
    if chat_template:
        try:
            text = tok.apply_chat_template(
                PROBE_MESSAGES, tokenize=False, add_generation_prompt=True, chat_template=chat_template
            )
        except Exception:
            text = None
    text = (text or "") + PROBE_TEXT
    return tok(text, return_tensors="pt", add_special_tokens=chat_template is None)["input_ids"][:, :256]


def _logits(model, ids):
    import torch

    with torch.inference_mode():
        return model(input_ids=ids.to(model.device)).logits.float().cpu()


def _eos_ids(tok, gen_eos) -> list[int]:
    ids: list[int] = []
    for v in gen_eos if isinstance(gen_eos, list) else [gen_eos]:
        if v is not None and int(v) not in ids:
            ids.append(int(v))
    if tok.eos_token_id is not None and tok.eos_token_id not in ids:
        ids.insert(0, int(tok.eos_token_id))
    # Chat templates that end a turn with a token other than eos (ChatML, Llama 3).
    for t in ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>"):
        tid = tok.convert_tokens_to_ids(t) if t in tok.get_vocab() else None
        if tid is not None and tid not in ids and tok.chat_template and t in tok.chat_template:
            ids.append(int(tid))
    return ids


class _Stages:
    """Reports each stage to `progress` and times it (the report's `timings_s`)."""

    def __init__(self, progress: Optional[Progress]):
        self.progress = progress
        self.timings: dict[str, float] = {}
        self._stage, self._t = "start", time.perf_counter()

    def __call__(self, stage: str, info: dict) -> None:
        now = time.perf_counter()
        self.timings[self._stage] = round(self.timings.get(self._stage, 0.0) + now - self._t, 3)
        self._stage, self._t = stage, now
        if self.progress:
            self.progress(stage, info)


def merge_run(
    run: Path | str,
    *,
    checkpoint: CheckpointRef = None,
    dtype: str = "auto",
    output: Optional[Path | str] = None,
    force: bool = False,
    device: str = "auto",
    max_shard_size: str = "2GB",
    progress: Optional[Progress] = None,
) -> dict:
    """Merge and verify; returns the report (also written to <out>/merge_report.json and
    <run>/merge_report.json). Raises SageError on any refusal or failed self-check."""
    t0 = time.time()
    say = _Stages(progress)
    if dtype not in DTYPES:
        raise SageError(f"--dtype {dtype!r} is not one of {', '.join(DTYPES)}", hint="e.g. --dtype bfloat16")
    run = resolve_run(run, "merge it")
    cfg = RunConfig.load(RunLayout(run).config)
    adapter, label = find_adapter(run, checkpoint)
    out = Path(output).expanduser().resolve() if output else default_output(run)
    _check_output(out, force)

    say("resolve", {"adapter": str(adapter), "label": label, "base": cfg.model.name})
    base = model_dir(cfg.model.name, revision=cfg.model.revision, metadata_only=False)
    dt = resolve_dtype(dtype, cfg.model.dtype, base)
    need = expected_size(base, dt)
    _check_disk(out, need)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    os.chmod(tmp, 0o755)
    report: dict[str, Any] = {
        "run": run.name,
        "adapter": str(adapter),
        "source": label,
        "base_model": cfg.model.name,
        "base_path": str(base),
        "dtype": dt,
        "output": str(out),
        "expected_bytes": need,
        "quantized_training": cfg.model.quantization,
    }
    try:
        # The tokenizer (and chat template) that trained the adapter: saved with it, else the run's final one.
        tok_dirs = (adapter, RunLayout(run).adapter)
        report.update(_do_merge(cfg, base, adapter, tmp, dt, device, max_shard_size, need, say, tok_dirs))
        say("report", {})
        report.update(
            seconds=round(time.time() - t0, 3),
            timings_s=dict(say.timings),  # seconds per stage (import = torch/transformers/peft)
            peak_rss_bytes=_peak_rss(),
            created=time.time(),
        )
        atomic_write_json(RunLayout(run).merge_report, report)
        _require_passed(report, run)
        atomic_write_json(merged_report(tmp), report)
        atomic_write_json(merged_mark(tmp), {"tool": "sage-ft-tui", "run": str(run), "created": time.time()})
        say("install", {"output": str(out)})
        _install(tmp, out)
    except SageError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, (KeyboardInterrupt, SystemExit)) and not is_disk_full(e):
            raise
        raise _failure(e, out, adapter) from None
    say("done", {"output": str(out), "seconds": report["seconds"]})
    return report


def _check_output(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise SageError(f"{out} exists and is not a folder", hint="remove it or choose another --output")
    if out.exists() and any(out.iterdir()) and not merged_mark(out).is_file():
        # --force replaces only a merged model this tool wrote; anything else is the user's
        # (said first, with or without --force: suggesting --force here would be refused).
        raise SageError(
            f"{out} is not a merged model written by sage-ft-tui (no {MERGED_MARK}); refusing to replace it",
            hint="choose another --output (an empty or new folder), or move that folder away yourself",
        )
    if out.exists() and any(out.iterdir()) and not force:
        raise SageError(
            f"{out} already exists",
            hint="pass --force to replace it (the old one is kept until the new one is complete), or --output elsewhere",
        )


def _check_disk(out: Path, need: int) -> None:
    # Room for the new folder while the old one still exists, plus tokenizer and slack.
    want = int(need * 1.05) + 64 * MiB
    free = free_bytes(out.parent)
    if free < want:
        raise SageError(
            f"not enough disk space for the merged model in {out.parent}: "
            f"{fmt_bytes(want)} needed, {fmt_bytes(free)} free",
            kind="disk",
            hint="free some space, or --output a folder on a larger disk",
        )


def _require_passed(report: dict, run: Path) -> None:
    sc = report["self_check"]
    if not sc["passed"]:
        raise SageError(
            f"self-check failed: the merged model's logits differ from base+adapter by {sc['max_rel_diff']:.2e} "
            f"(tolerance {sc['tolerance']:.0e})",
            kind="model",
            where=str(RunLayout(run).merge_report),
            hint="nothing was written to the merged folder; try --dtype float32, and report it if it persists",
        )


def _failure(e: BaseException, out: Path, adapter: Path) -> SageError:
    """An unexpected exception during the merge, as the one error the user sees."""
    if is_disk_full(e):
        return SageError(
            f"the disk filled up while writing the merged model in {out.parent}",
            kind="disk",
            hint="free some space and merge again (the old merged folder, if any, is untouched)",
        )
    if isinstance(e, MemoryError) or "out of memory" in str(e).lower():
        return SageError(
            "out of memory while merging",
            kind="oom",
            hint="merge on a machine with more RAM (merging runs on the CPU when the GPU is too small)",
        )
    first = clip(str(e), 200) or type(e).__name__
    return SageError(
        f"merge failed: {type(e).__name__}: {first}",
        kind="internal",
        where=str(adapter),
        hint="check that the adapter was trained on this run's base model",
    )


def _install(tmp: Path, out: Path) -> None:
    """Swap the finished folder into place; an existing one is removed only afterwards."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}-{int(time.time())}")
        os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        if old is not None and not out.exists():
            os.replace(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ---- the merge itself (imports torch) ------------------------------------------------


def _do_merge(
    cfg,
    base: Path,
    adapter: Path,
    tmp: Path,
    dt: str,
    device: str,
    shard: str,
    need: int,
    say: Progress,
    tok_dirs: tuple[Path, ...] = (),
) -> dict:
    """Load, merge, save into `tmp`, re-load and compare: the report's model fields."""
    say("import", {})
    import torch

    quiet_hf()
    torch_dtype = getattr(torch, dt)
    dev = _device(device, need)
    trust = cfg.model.trust_remote_code
    say("load", {"base": str(base), "dtype": dt, "device": dev})
    tok, tok_src, chat_template = _load_tokenizer(base, tok_dirs, trust)
    model = _load_model(base, torch_dtype, trust, dev)
    emb = model.get_input_embeddings().weight.shape[0]
    if len(tok) > emb:
        model.resize_token_embeddings(len(tok))

    say("adapter", {"adapter": str(adapter)})
    from peft import PeftModel

    peft_model = PeftModel.from_pretrained(model, str(adapter), is_trainable=False)
    peft_model.eval()
    ids = _probe_ids(tok, chat_template)
    with peft_model.disable_adapter():
        base_logits = _logits(peft_model, ids)
    ref = _logits(peft_model, ids)

    say("merge", {})
    merged = peft_model.merge_and_unload(safe_merge=True)
    n_params = sum(p.numel() for p in merged.parameters())
    gen, eos = _generation_config(base, merged, tok)
    merged.generation_config = gen
    merged.config.dtype = torch_dtype  # recorded in config.json

    say("save", {"tmp": str(tmp), "params": n_params})
    merged.save_pretrained(str(tmp), safe_serialization=True, max_shard_size=shard)
    tok.save_pretrained(str(tmp))
    _copy_tokenizer_files(Path(tok_src), tmp)
    if chat_template and not (tmp / "chat_template.jinja").exists():
        (tmp / "chat_template.jinja").write_text(chat_template, encoding="utf-8")
    gen.save_pretrained(str(tmp))
    del merged, peft_model, model
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()

    say("check", {})
    got = _logits(_load_model(tmp, torch_dtype, trust, dev), ids)
    files = sorted(p.name for p in tmp.iterdir())
    shards = [f for f in files if f.endswith(".safetensors")]
    return {
        "device": dev,
        "params": n_params,
        "shards": shards,
        "bytes": sum((tmp / f).stat().st_size for f in shards),
        "files": files,
        "eos_token_id": eos,
        "eos_tokens": [tok.convert_ids_to_tokens(i) for i in eos],
        "chat_template": bool(chat_template),
        "tokenizer_from": str(tok_src),
        "cuda_peak_bytes": int(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else None,
        "self_check": _self_check(got, ref, base_logits, dt, int(ids.shape[1])),
    }


def quiet_hf() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning)


def _load_tokenizer(base: Path, tok_dirs: tuple[Path, ...], trust: bool):
    """(tokenizer, where it came from, chat template): the adapter's own, else the base's."""
    from transformers import AutoTokenizer

    tok_src = next((d for d in tok_dirs if (d / "tokenizer_config.json").exists()), base)
    tok = AutoTokenizer.from_pretrained(str(tok_src), trust_remote_code=trust)
    chat_template = tok.chat_template
    if not chat_template:
        chat_template = chat_tokenizer(str(base)).template  # what training used (fallback if none)
        tok.chat_template = chat_template
    return tok, tok_src, chat_template


def _copy_tokenizer_files(src: Path, dest: Path) -> None:
    """The tokenizer as training had it, verbatim (tokenizer.model included)."""
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, dest / name)


def _load_model(folder: Path, torch_dtype, trust: bool, dev: str):
    with MODEL_BUILD:
        model = auto_class(folder).from_pretrained(  # a VLM merges whole: tower and projector kept
            str(folder), dtype=torch_dtype, trust_remote_code=trust, low_cpu_mem_usage=True
        )
    model = model.to(dev)
    model.eval()
    return model


def _generation_config(base: Path, merged, tok):
    """The base's generation config, with every token that ends a turn as EOS; (config, eos ids)."""
    from transformers import GenerationConfig

    try:
        gen = GenerationConfig.from_pretrained(str(base))
    except Exception:
        gen = merged.generation_config or GenerationConfig()
    eos = _eos_ids(tok, gen.eos_token_id if gen.eos_token_id is not None else merged.config.eos_token_id)
    gen.eos_token_id = eos[0] if len(eos) == 1 else eos
    if gen.pad_token_id is None:
        gen.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else eos[0]
    return gen, eos


def _self_check(got, ref, base_logits, dt: str, probe_tokens: int) -> dict:
    """The re-loaded merged model's logits (`got`) against base+adapter's (`ref`)."""
    import torch

    scale = float(ref.abs().max().clamp_min(1e-6))
    max_abs = float((got - ref).abs().max())
    tol = TOLERANCE.get(dt, 3e-2)
    rel = max_abs / scale
    return {
        "passed": bool(rel <= tol and torch.isfinite(got).all()),
        "probe_tokens": probe_tokens,
        "max_abs_diff": max_abs,
        "max_rel_diff": rel,
        "tolerance": tol,
        "top1_agreement": float((got.argmax(-1) == ref.argmax(-1)).float().mean()),
        "adapter_effect": float((ref - base_logits).abs().max()) / scale,
        "note": "merged folder re-loaded from disk vs base+adapter (unmerged) on the same probe",
    }


__all__ = ["merge_run", "quiet_hf"]
