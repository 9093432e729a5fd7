"""The tiny demo model: a small llama-style causal LM and a byte-level BPE tokenizer, both
trained here, offline, once, then cached; loaded through the same `from_pretrained` path as
any real model. Selectable as `tiny-demo`.

The weights are not random: the build pre-trains the model for a few seconds on bundled
original prose and simple chat turns (samples/pretrain/, CC0), so the base writes English
in the ChatML turn format and stops at <|im_end|>. It has never seen the demo's facts
(samples/demo_sage.jsonl), so fine-tuning visibly teaches it something it could not know.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Optional

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.paths import cache_home

TINY_NAME = "tiny-demo"
TINY_VERSION = "v2"  # bump whenever the build changes: stale caches are rebuilt
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]

# ChatML, as many real chat models use; the assistant turn ends with <|im_end|> (= EOS).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Tiny but real: 4 layers so LoRA has something to adapt, small enough to train on CPU.
ARCH = dict(
    hidden_size=64,
    intermediate_size=176,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=2048,
    rope_theta=10000.0,
)
VOCAB = 1024  # small enough that every token is seen often in pre-training


def tiny_model_dir() -> Path:
    return cache_home() / f"{TINY_NAME}-{TINY_VERSION}"


def is_tiny(name: str) -> bool:
    return name.strip().lower() == TINY_NAME


def resolve_model_name(name: str) -> str:
    """`tiny-demo` → its folder (built if needed); anything else unchanged."""
    return str(ensure_tiny_model()) if is_tiny(name) else name


def is_built(target: Path | None = None) -> bool:
    """Whether the tiny model's folder is there already (no build needed)."""
    target = Path(target) if target else tiny_model_dir()
    return (target / "config.json").exists() and (target / "tokenizer.json").exists()


Progress = Callable[[float, str], None]  # (share done 0..1, what is being done)
PROGRESS_TAG = "sage-tiny-progress"  # the child's stdout lines that carry the build's progress


def ensure_tiny_model(target: Path | None = None, progress: Optional[Progress] = None) -> Path:
    """The tiny model's folder, built on first use. The build imports torch, so a caller
    that has not imported it (the TUI, `start`) gets the build in a child process.
    `progress(share, what)` is called as the build goes (from the calling thread)."""
    target = Path(target) if target else tiny_model_dir()
    if is_built(target):
        return target
    if "torch" not in sys.modules:
        _build_in_child(target, progress)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent first uses build it once
        if not (target / "config.json").exists():
            for stale in target.parent.glob(f".{target.name}.*"):  # a build killed half-way (we hold the lock)
                if stale.is_dir():
                    shutil.rmtree(stale, ignore_errors=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
            try:
                build_tiny_model(tmp, progress=progress)
                if target.exists():
                    shutil.rmtree(target)
                os.replace(tmp, target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def _build_in_child(target: Path, progress: Optional[Progress] = None) -> None:
    """The build in a child process; its progress comes back as tagged stdout lines. When
    `progress` raises (the caller gave up, e.g. the app quit) the child is killed."""
    code = "import sys; from pathlib import Path; from sage_ft_tui.engine.models.tiny import _force; _force(Path(sys.argv[1]))"
    if progress is not None:
        progress(0.0, "loading torch")
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(target)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    tail: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            if line.startswith(PROGRESS_TAG + " "):
                share, _, what = line[len(PROGRESS_TAG) + 1 :].partition(" ")
                if progress is not None:
                    try:
                        progress(float(share), what)
                    except ValueError:
                        pass
            elif line.strip():
                tail = (tail + [line])[-20:]
        rc = proc.wait(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if rc != 0:
        raise SageError(
            f"could not build the tiny demo model: {(tail or ['unknown error'])[-1]}",
            hint="run `sage-ft-tui doctor`",
            kind="model",
        )


def _force(target: Path) -> Path:
    import torch  # noqa: F401  (so ensure_tiny_model builds here, in this child)

    def say(share: float, what: str) -> None:
        print(f"{PROGRESS_TAG} {share:.3f} {what}", flush=True)

    return ensure_tiny_model(target, progress=say)


# Pre-training at build time: enough steps for fluent-looking turns, few enough to build in
# seconds on a loaded 2-core CPU (bench figures in docs/EVAL.md).
PRETRAIN_STEPS = 200
PRETRAIN_BLOCK = 96
PRETRAIN_BATCH = 16
PRETRAIN_LR = 4e-3


def _corpus() -> list[str]:
    """What the tokenizer is trained on: the pre-training text only, plus printable ASCII.
    Every merged token then occurs in pre-training; a token learned from text the model
    never read would start with a logit so low that a short LoRA could not lift it."""
    texts = pretrain_documents()
    texts.append(" ".join(chr(c) for c in range(32, 127)))
    return texts


def pretrain_documents() -> list[str]:
    """What the base model is pre-trained on: the prose paragraphs and the chat turns of
    samples/pretrain/ rendered with the model's own template (nothing from the demo data)."""
    import json
    from importlib import resources

    root = resources.files("sage_ft_tui") / "samples" / "pretrain"
    prose = (root / "stories.txt").read_text(encoding="utf-8")
    docs = [p.strip() + "<|endoftext|>" for p in prose.split("\n\n") if p.strip()]
    for line in (root / "chat.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            docs.append(
                f"<|im_start|>user\n{row['question']}<|im_end|>\n<|im_start|>assistant\n{row['answer']}<|im_end|>\n"
            )
    return docs


def pretrain(
    model, fast, *, steps: int = PRETRAIN_STEPS, seed: int = 0, threads: int = 1, progress: Optional[Progress] = None
) -> list[float]:
    """A short causal-LM pre-training on `pretrain_documents()`, packed into fixed blocks.
    Returns the loss per step."""
    import random

    import torch

    ids: list[int] = []
    docs = pretrain_documents()
    random.Random(seed).shuffle(docs)
    for d in docs:
        ids += fast(d, add_special_tokens=False)["input_ids"]
    data = torch.tensor(ids, dtype=torch.long)
    n_blocks = max(1, len(data) - PRETRAIN_BLOCK - 1)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=PRETRAIN_LR, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=PRETRAIN_LR, total_steps=steps, pct_start=0.1)
    model.train()
    # One thread by default: a model this small gains little from two, and on a shared,
    # loaded CPU two threads contend and each step is several times slower
    # (bench/bench_eval.py --build; figures in docs/EVAL.md).
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        losses = _pretrain_steps(model, data, n_blocks, opt, sched, gen, steps, progress)
    finally:
        torch.set_num_threads(before)
    model.eval()
    return losses


def _pretrain_steps(model, data, n_blocks: int, opt, sched, gen, steps: int, progress=None) -> list[float]:
    import torch

    losses = []
    for i in range(steps):
        if progress is not None and i % 10 == 0:
            progress(0.1 + 0.85 * i / steps, "pre-training")
        starts = torch.randint(0, n_blocks, (PRETRAIN_BATCH,), generator=gen)
        batch = torch.stack([data[s : s + PRETRAIN_BLOCK] for s in starts.tolist()])
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
    return losses


def train_tokenizer(extra_special: list[str] | None = None):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=SPECIAL + (extra_special or []),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    return tok


def chat_tokenizer(extra_special: list[str] | None = None, max_length: int = int(ARCH["max_position_embeddings"])):
    """The demo's BPE tokenizer with ChatML specials and template (also the GPU check's models')."""
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=train_tokenizer(extra_special),
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|pad|>",
        unk_token=None,
        additional_special_tokens=["<|im_start|>", "<|endoftext|>"] + (extra_special or []),
        model_max_length=max_length,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_model(
    out: Path,
    seed: int = 0,
    extra_special: list[str] | None = None,
    pretrain_steps: int | None = None,
    progress: Optional[Progress] = None,
    **arch,
) -> Path:
    """Tokenizer + model in `out`. The demo's own shape is pre-trained; a custom shape
    (`**arch`, the benchmarks' larger models) keeps random weights unless `pretrain_steps`
    says otherwise, so building one stays fast."""
    if pretrain_steps is None:
        pretrain_steps = 0 if arch else PRETRAIN_STEPS
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if progress is not None:
        progress(0.02, "tokenizer")
    fast = chat_tokenizer(extra_special)
    fast.save_pretrained(out)

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(fast),
        bos_token_id=None,
        eos_token_id=fast.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=True,
        torch_dtype="float32",
        **{**ARCH, **arch},
    )
    model = LlamaForCausalLM(cfg)
    if pretrain_steps:
        pretrain(model, fast, steps=pretrain_steps, seed=seed, progress=progress)
    model.generation_config.eos_token_id = cfg.eos_token_id
    model.generation_config.pad_token_id = cfg.pad_token_id
    if progress is not None:
        progress(0.97, "saving")
    model.save_pretrained(out, safe_serialization=True)
    return out
