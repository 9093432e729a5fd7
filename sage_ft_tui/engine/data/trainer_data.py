"""The data as the trainer reads it: a run's prepared data tokenized and cached in the run
folder (<run>/data/tokenized/<key>, so a resume or re-run skips it), vision rows as TRL's
prompt/completion/images rows, and the public `prepare_dataset` of the legacy API.

Torch-free: `datasets` for the cache (imported inside the functions that need it: the
heavy ML stack stays out of the importers), `tokenizers` + Jinja for templates.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from sage_ft_tui.engine.data.encode import encode_examples
from sage_ft_tui.engine.data.formats import RowError, detect_format, normalize
from sage_ft_tui.engine.data.images import vision_examples
from sage_ft_tui.engine.data.load import load_training_data
from sage_ft_tui.engine.data.per_task import task_data
from sage_ft_tui.engine.data.rows import Row
from sage_ft_tui.engine.data.template import chat_tokenizer
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.methods.preference import unpairs
from sage_ft_tui.engine.methods.registry import check_task_format, trains_own_rows
from sage_ft_tui.engine.models.family import is_vision
from sage_ft_tui.engine.models.resolve import model_dir as resolve_model_dir
from sage_ft_tui.engine.models.tiny import TINY_NAME
from sage_ft_tui.engine.runs.layout import RunLayout

# Below this many rows a worker pool costs more than it saves.
TOKENIZE_PARALLEL_MIN_ROWS = 20000


def tokenize_batch(
    batch: dict,
    model_dir: str,
    max_length: int,
    is_text: bool,
    tool_format: str = "auto",
    mask_reasoning: bool = False,
    task: str = "instruction",
    unpair: bool = False,
) -> dict:
    tok = chat_tokenizer(model_dir).with_tool_format(tool_format)
    ids_out, mask_out = [], []
    n = len(next(iter(batch.values())))
    if trains_own_rows(task):
        return _tokenize_trainer_batch(tok, batch, n, task, unpair)
    for i in range(n):
        rec = {k: batch[k][i] for k in batch}
        for enc in encode_examples(tok, {"text": rec["text"]} if is_text else rec, mask_reasoning):
            if is_text and len(enc.input_ids) > max_length:
                # Long documents become several max_length pieces rather than being cut off.
                for s in range(0, len(enc.input_ids), max_length):
                    ids_out.append(enc.input_ids[s : s + max_length])
                    mask_out.append(enc.completion_mask[s : s + max_length])
            else:
                ids_out.append(enc.input_ids)
                mask_out.append(enc.completion_mask)
    return {"input_ids": ids_out, "completion_mask": mask_out}


def _tokenize_trainer_batch(tok, batch: dict, n: int, task: str, unpair: bool) -> dict:
    """Rows for a task's own trainer, in its columns (per_task.TaskData.trainer_rows)."""
    rows_of = task_data(task).trainer_rows
    assert rows_of is not None, task  # trains_own_rows(task): its kind says how
    out: dict[str, list] = {}
    for i in range(n):
        for enc in rows_of(tok, {k: batch[k][i] for k in batch}, unpair):
            for k, v in enc.items():
                out.setdefault(k, []).append(v)
    return out


def _has_trained_token(masks: list, max_length: int) -> list[bool]:
    return [any(m[:max_length]) for m in masks]


def tokenized_datasets(cfg, run: Path, model_dir: str):
    """(train, eval or None) as datasets with input_ids + completion_mask, cached under
    <run>/data/tokenized/<key> so a resume or re-run skips preprocessing. A file lock
    around the cache lets only one process build it; the others wait, then load it."""
    import datasets

    datasets.disable_progress_bars()
    if is_vision(Path(model_dir)) and not trains_own_rows(cfg.task):
        return vision_datasets(run)
    data_dir = RunLayout(run).data
    key = cache_key(cfg, data_dir, model_dir)
    cache = RunLayout(run).tokenized / key
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    with open(cache.parent / f".{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for split_name in ("train", "eval"):
            src = data_dir / f"{split_name}.jsonl"
            target = cache / split_name
            if target.exists():
                out.append(datasets.load_from_disk(str(target)))
                continue
            if not src.exists() or src.stat().st_size == 0:
                out.append(None)
                continue
            ds = datasets.load_dataset(
                "json", data_files=str(src), split="train", cache_dir=str(data_dir / ".hf_cache")
            )
            is_text = "text" in ds.column_names
            nproc = min(os.cpu_count() or 1, 8) if len(ds) > TOKENIZE_PARALLEL_MIN_ROWS else None
            ds = ds.map(
                tokenize_batch,
                batched=True,
                batch_size=1000,
                remove_columns=ds.column_names,
                num_proc=nproc,
                desc=None,
                fn_kwargs={
                    "model_dir": model_dir,
                    "max_length": cfg.training.max_length,
                    "is_text": is_text,
                    "tool_format": cfg.data.tool_format,
                    "mask_reasoning": cfg.data.reasoning == "mask",
                    "task": cfg.task,
                    "unpair": unpairs(cfg),
                },
            )
            ds = (
                ds
                if trains_own_rows(cfg.task)
                else ds.filter(  # the trainer cuts at max_length: no trained token before it teaches nothing
                    _has_trained_token,
                    fn_kwargs={"max_length": cfg.training.max_length},
                    input_columns=["completion_mask"],
                    batched=True,
                    batch_size=1000,
                    num_proc=nproc,
                )
            )
            tmp = cache / f".{split_name}.tmp"
            ds.save_to_disk(str(tmp))
            os.replace(tmp, target)
            out.append(datasets.load_from_disk(str(target)))
    return out[0], out[1]


def vision_datasets(run: Path):
    """(train, eval or None) for a vision-language model: TRL's prompt/completion/images rows
    (images.vision_examples), images decoded by `datasets` when the trainer reads a row; the
    processor tokenizes each batch itself (TRL's vision collator), so there is no token cache."""
    import datasets

    lay = RunLayout(run)
    out: list[Any] = []
    for src in (lay.train_data, lay.eval_data):
        rows: list[dict] = []
        if src.exists():
            with open(src, encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        rows += vision_examples(json.loads(line))
        if not rows:
            out.append(None)
            continue
        ds = datasets.Dataset.from_list(rows)
        out.append(ds.cast_column("images", datasets.List(datasets.Image())))
    return out[0], out[1]


def cache_key(cfg, data_dir: Path, model_dir: str) -> str:
    h = hashlib.sha256()
    lay = RunLayout(data_dir.parent)
    for p in (lay.train_data, lay.eval_data):
        name = p.name
        if p.exists():
            st = p.stat()
            h.update(f"{name}:{st.st_size}:{st.st_mtime_ns}".encode())
    d = cfg.data
    method = cfg.preference.method if cfg.task == "preference" else ""
    h.update(f"{cfg.training.max_length}|{model_dir}|{cfg.task}|{method}|{d.tool_format}|{d.reasoning}|v4".encode())
    for fname in ("tokenizer.json", "chat_template.jinja", "tokenizer_config.json"):
        p = Path(model_dir) / fname
        if p.exists():
            h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()[:16]


def prepare_dataset(
    data: Any, model: str = TINY_NAME, *, task: str = "instruction", max_length: int = 2048, fmt: str = "auto"
):
    """Public API: rows (a path, list of dicts, or a datasets.Dataset) → a tokenized Dataset
    with input_ids and completion_mask, ready for `LoRATrainer.train`."""
    import datasets

    if isinstance(data, datasets.Dataset):
        data = data.to_list()
    if isinstance(data, list):
        fmt_ = fmt
        if fmt_ == "auto":
            found, _ = detect_format([Row(f"row {i}", r) for i, r in enumerate(data[:200])])
            if found is None:
                raise SageError(
                    "cannot tell the data format of the rows", hint="see `sage-ft-tui examples`", kind="data"
                )
            fmt_ = found
        check_task_format(task, fmt_)
        records = []
        for i, r in enumerate(data):
            try:
                records.append(normalize(r, fmt_))
            except RowError as e:
                raise SageError(f"row {i}: {e}", hint="fix the row", kind="data") from None
    else:
        records = load_training_data(data, task=task, fmt=fmt).records
    if any(r.get("images") for r in records):
        raise SageError(
            "prepare_dataset tokenizes text only, and these rows hold images",
            hint="train image rows as a run (`sage-ft-tui start --data FILE` with a vision-language model): "
            "its images are checked and processed by the model's processor",
            kind="data",
        )
    mdir = str(resolve_model_dir(model))
    tok = chat_tokenizer(mdir)
    is_text = "text" in records[0]
    batch = {k: [r.get(k) for r in records] for k in records[0]}
    if not is_text:
        batch = {"messages": [r["messages"] for r in records], "tools": [r.get("tools") for r in records]}
    out = tokenize_batch(batch, mdir, max_length, is_text)
    del tok
    return datasets.Dataset.from_dict(out)
