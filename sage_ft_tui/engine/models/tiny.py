"""The tiny demo model: a small llama-style causal LM with random weights and a byte-level
BPE tokenizer trained here with `tokenizers`. Built offline, once, then cached; loaded
through the same `from_pretrained` path as any real model. Selectable as `tiny-demo`.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from sage_ft_tui.engine.paths import cache_home

TINY_NAME = "tiny-demo"
TINY_VERSION = "v1"
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
VOCAB = 2048


def tiny_model_dir() -> Path:
    return cache_home() / f"{TINY_NAME}-{TINY_VERSION}"


def is_tiny(name: str) -> bool:
    return name.strip().lower() == TINY_NAME


def resolve_model_name(name: str) -> str:
    """`tiny-demo` → its folder (built if needed); anything else unchanged."""
    return str(ensure_tiny_model()) if is_tiny(name) else name


def ensure_tiny_model(target: Path | None = None) -> Path:
    """The tiny model's folder, built on first use. The build imports torch, so a caller
    that has not imported it (the TUI, `start`) gets the build in a child process."""
    target = Path(target) if target else tiny_model_dir()
    if (target / "config.json").exists() and (target / "tokenizer.json").exists():
        return target
    if "torch" not in sys.modules:
        _build_in_child(target)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent first uses build it once
        if not (target / "config.json").exists():
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
            try:
                build_tiny_model(tmp)
                if target.exists():
                    shutil.rmtree(target)
                os.replace(tmp, target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def _build_in_child(target: Path) -> None:
    from sage_ft_tui.engine.errors import SageError

    code = "import sys; from pathlib import Path; from sage_ft_tui.engine.models.tiny import ensure_tiny_model, _force; _force(Path(sys.argv[1]))"
    r = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["unknown error"]
        raise SageError(
            f"could not build the tiny demo model: {tail[0]}", hint="run `sage-ft-tui doctor`", kind="model"
        )


def _force(target: Path) -> Path:
    import torch  # noqa: F401  (so ensure_tiny_model builds here, in this child)

    return ensure_tiny_model(target)


def _corpus() -> list[str]:
    from importlib import resources

    texts = []
    root = resources.files("sage_ft_tui") / "samples"
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".jsonl", ".json", ".txt", ".csv")):
            texts.append(entry.read_text(encoding="utf-8"))
    texts.append(" ".join(chr(c) for c in range(32, 127)))
    return texts


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


def build_tiny_model(out: Path, seed: int = 0, extra_special: list[str] | None = None, **arch) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tok = train_tokenizer(extra_special)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|pad|>",
        unk_token=None,
        additional_special_tokens=["<|im_start|>", "<|endoftext|>"] + (extra_special or []),
        model_max_length=ARCH["max_position_embeddings"],
    )
    fast.chat_template = CHAT_TEMPLATE
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
    model.generation_config.eos_token_id = cfg.eos_token_id
    model.generation_config.pad_token_id = cfg.pad_token_id
    model.save_pretrained(out, safe_serialization=True)
    return out
