"""Build the model zoo: tiny random-weight folders shaped like real instruct models.

    python -m tests.zoo.build DEST [NAME...]

Each folder holds what the real hub repo holds, in its format: config.json (the real
architecture class, hub-style keys, a tiny shape), model.safetensors (seeded random weights),
tokenizer.json (+ tokenizer.model for SentencePiece families), tokenizer_config.json (the
family's tokenizer class, special tokens, the real chat template), special_tokens_map.json
and generation_config.json (the family's stop tokens). Nothing is downloaded: vocabularies
are trained here on the project's bundled CC0 text. Deterministic: the same sources and
library versions write the same bytes.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import tempfile
import zlib
from pathlib import Path
from typing import Any

from tests.zoo.families import FAMILIES, TINY, Family, Token, family

ZOO = Path(__file__).resolve().parent
TEMPLATES = ZOO / "templates"
SAMPLES = ZOO.parents[1] / "sage_ft_tui" / "samples"

# The families' real pre-tokenizer split patterns (from their tokenizer.json files).
QWEN2_RE = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
LLAMA3_RE = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
TEKKEN_RE = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|"
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|"
    r"\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
O200K_RE = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
    r"\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
SPLIT_RE = {"bpe-qwen2": QWEN2_RE, "bpe-llama3": LLAMA3_RE, "bpe-tekken": TEKKEN_RE, "bpe-o200k": O200K_RE}
TOKENIZER_KINDS = (*SPLIT_RE, "bpe-gpt2", "spm")


# ---------------------------------------------------------------- corpus


def corpus_lines() -> list[str]:
    """The bundled CC0 text the vocabularies learn from: the pre-training prose, and every string
    of the sample chat / instruction / QA rows (their words, not their JSON)."""
    lines: list[str] = []
    for p in ("pretrain/stories.txt", "text.txt"):
        lines += [ln for ln in (SAMPLES / p).read_text(encoding="utf-8").splitlines() if ln.strip()]
    for p in ("pretrain/chat.jsonl", "chat_messages.jsonl", "instruction_alpaca.jsonl", "qa.jsonl", "demo_sage.jsonl"):
        for raw in (SAMPLES / p).read_text(encoding="utf-8").splitlines():
            if raw.strip():
                lines += [s for s in _strings(json.loads(raw)) if s.strip()]
    # Roles, digits and a little non-ASCII, so they are pieces in every vocabulary.
    lines += ["system user assistant model tool", "0 1 2 3 4 5 6 7 8 9 10 42 2024", "café naïve – “quotes” ü é 日本"]
    return lines


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


# ---------------------------------------------------------------- tokenizers


def _byte_level_bpe(fam: Family):
    """A byte-level BPE `tokenizers.Tokenizer` with the family's pre-tokenizer, trained here."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )

    tok = Tokenizer(models.BPE())
    if fam.tokenizer_kind == "bpe-gpt2":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True, trim_offsets=True)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(SPLIT_RE[fam.tokenizer_kind]), behavior="isolated", invert=False),
                pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
            ]
        )
    if fam.tokenizer_kind == "bpe-qwen2":
        tok.normalizer = normalizers.NFC()
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    first = [t.content for t in fam.added] if fam.specials_first else []
    trainer = trainers.BpeTrainer(
        vocab_size=fam.vocab_size,
        min_frequency=2,
        special_tokens=first,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus_lines(), trainer=trainer)
    if not fam.specials_first:
        for t in fam.added:
            added = AddedToken(t.content, special=t.special, normalized=False, rstrip=t.rstrip, lstrip=t.lstrip)
            (tok.add_special_tokens if t.special else tok.add_tokens)([added])
    byte_level = processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True)
    if fam.tokenizer_kind in ("bpe-llama3", "bpe-tekken") and fam.bos:
        bos = (fam.bos, tok.token_to_id(fam.bos))
        tok.post_processor = processors.Sequence(
            [
                byte_level,
                processors.TemplateProcessing(
                    single=f"{fam.bos}:0 $A:0", pair=f"{fam.bos}:0 $A:0 {fam.bos}:1 $B:1", special_tokens=[bos]
                ),
            ]
        )
    else:
        tok.post_processor = byte_level
    return tok


def _spm_model(fam: Family) -> bytes:
    """A SentencePiece BPE model with byte fallback, trained here: the family's tokenizer.model."""
    import sentencepiece as spm

    ids = fam.spm_ids
    names = {"unk": fam.unk or "<unk>", "bos": fam.bos or "<s>", "eos": "</s>", "pad": fam.pad or "<pad>"}
    if fam.name.startswith("gemma"):
        names["eos"] = fam.eos
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus_lines()),
        model_writer=out,
        model_type="bpe",
        vocab_size=fam.vocab_size,
        byte_fallback=True,
        character_coverage=1.0,
        split_digits=True,
        allow_whitespace_only_pieces=True,
        remove_extra_whitespaces=False,
        normalization_rule_name="identity",
        add_dummy_prefix=fam.spm_dummy_prefix,
        unk_id=ids.get("unk", 0),
        bos_id=ids.get("bos", 1),
        eos_id=ids.get("eos", 2),
        pad_id=ids.get("pad", -1),
        unk_piece=names["unk"],
        bos_piece=names["bos"],
        eos_piece=names["eos"],
        pad_piece=names["pad"],
        control_symbols=list(fam.spm_control),
        user_defined_symbols=list(fam.spm_user_defined),
        num_threads=1,
        minloglevel=2,
    )
    return out.getvalue()


def _added_entry(content: str, special: bool, rstrip: bool = False, lstrip: bool = False) -> dict[str, Any]:
    return {
        "content": content,
        "lstrip": lstrip,
        "normalized": False,
        "rstrip": rstrip,
        "single_word": False,
        "special": special,
    }


def _tokenizer_config(fam: Family, added: dict[int, Token]) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "added_tokens_decoder": {
            str(i): _added_entry(t.content, t.special, t.rstrip, t.lstrip) for i, t in sorted(added.items())
        },
        "bos_token": fam.bos,
        "chat_template": (TEMPLATES / fam.template).read_text(encoding="utf-8"),
        "clean_up_tokenization_spaces": False,
        "eos_token": fam.eos,
        "pad_token": fam.pad,
        "tokenizer_class": fam.tokenizer_class,
        "unk_token": fam.unk,
    }
    cfg.update(fam.tokenizer_config)
    return dict(sorted(cfg.items()))


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def build_tokenizer(fam: Family, dest: Path) -> dict[str, int]:
    """Write the family's tokenizer files into `dest`; returns the vocabulary (token → id)."""
    if fam.tokenizer_kind == "spm":
        vocab = _build_spm_tokenizer(fam, dest)
    else:
        tok = _byte_level_bpe(fam)
        (dest / "tokenizer.json").write_text(tok.to_str(pretty=True) + "\n", encoding="utf-8")
        vocab = tok.get_vocab(with_added_tokens=True)
        added = {vocab[t.content]: t for t in fam.added}
        _write_json(dest / "tokenizer_config.json", _tokenizer_config(fam, added))
    specials = {k: v for k, v in (("bos_token", fam.bos), ("eos_token", fam.eos), ("pad_token", fam.pad)) if v}
    if fam.unk:
        specials["unk_token"] = fam.unk
    _write_json(dest / "special_tokens_map.json", specials)
    return vocab


def _build_spm_tokenizer(fam: Family, dest: Path) -> dict[str, int]:
    """tokenizer.model trained here; tokenizer.json from transformers' own conversion of it
    (what `from_pretrained` does for a repo that ships only tokenizer.model)."""
    import sentencepiece as spm

    model = _spm_model(fam)
    (dest / "tokenizer.model").write_bytes(model)
    sp = spm.SentencePieceProcessor(model_proto=model)
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    added: dict[int, Token] = {}
    extra: dict[str, int] = {}
    for t in fam.added:
        if t.content in vocab:
            added[vocab[t.content]] = t
        else:  # beyond the .model (Phi-3.5's <|endoftext|>, <|end|>, ...)
            extra[t.content] = len(vocab) + len(extra)
            added[extra[t.content]] = t
    # The .model's own specials are listed too, as the real tokenizer_config.json files do.
    for name in (fam.unk, fam.bos, fam.eos, fam.pad):
        if name and name in vocab and vocab[name] not in added:
            added[vocab[name]] = Token(name)
    if extra:
        _write_json(dest / "added_tokens.json", extra)
    _write_json(dest / "tokenizer_config.json", _tokenizer_config(fam, added))

    from transformers import AutoTokenizer

    converted = AutoTokenizer.from_pretrained(str(dest))
    with tempfile.TemporaryDirectory() as tmp:
        converted.save_pretrained(tmp)
        shutil.copyfile(Path(tmp) / "tokenizer.json", dest / "tokenizer.json")
    # Re-indent as the hub files are, so the bytes do not depend on the save path.
    data = json.loads((dest / "tokenizer.json").read_text(encoding="utf-8"))
    (dest / "tokenizer.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return {**vocab, **extra}


# ---------------------------------------------------------------- model


def _ids(vocab: dict[str, int], tokens: tuple[str, ...]) -> int | list[int]:
    ids = [vocab[t] for t in tokens]
    return ids[0] if len(ids) == 1 else ids


def model_config(fam: Family, vocab: dict[str, int]) -> dict[str, Any]:
    """config.json as the hub repo has it (hub-style keys: rope_theta, rope_scaling, ...)."""
    size = max(vocab.values()) + 1
    if fam.pad_vocab_to:
        size = -(-size // fam.pad_vocab_to) * fam.pad_vocab_to
    cfg: dict[str, Any] = {
        "architectures": [fam.architecture],
        "model_type": fam.model_type,
        **TINY,
        "vocab_size": size,
        "bos_token_id": vocab[fam.config_bos or fam.bos] if (fam.config_bos or fam.bos) else None,
        "eos_token_id": _ids(vocab, fam.config_eos or (fam.eos,)),
        "initializer_range": 0.02,
        "attention_dropout": 0.0,
        "torch_dtype": "float32",
        "use_cache": True,
    }
    if fam.pad:
        cfg["pad_token_id"] = vocab[fam.pad]
    cfg.update(fam.config)
    return dict(sorted(cfg.items()))


def generation_config(fam: Family, vocab: dict[str, int]) -> dict[str, Any]:
    gen: dict[str, Any] = {"eos_token_id": _ids(vocab, fam.gen_eos)}
    if fam.gen_bos or fam.bos:
        gen["bos_token_id"] = vocab[fam.gen_bos or fam.bos]
    if fam.gen_pad:
        gen["pad_token_id"] = vocab[fam.gen_pad]
    return dict(sorted(gen.items()))


def build_model(fam: Family, dest: Path, vocab: dict[str, int], seed: int = 0) -> None:
    import torch
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = model_config(fam, vocab)
    _write_json(dest / "config.json", cfg)
    _write_json(dest / "generation_config.json", generation_config(fam, vocab))
    config = AutoConfig.from_pretrained(str(dest))
    torch.manual_seed(seed + zlib.crc32(fam.name.encode()))
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    state = model.state_dict()
    if cfg.get("tie_word_embeddings") and "lm_head.weight" in state:
        del state["lm_head.weight"]  # tied: stored once, as in the real repos
    save_file({k: v.contiguous() for k, v in sorted(state.items())}, str(dest / "model.safetensors"), {"format": "pt"})


# ---------------------------------------------------------------- folders


def build_family(name: str, dest: Path | str, seed: int = 0) -> Path:
    """Build one family's folder at `dest` (created; must not hold other files)."""
    fam = family(name)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    vocab = build_tokenizer(fam, dest)
    build_model(fam, dest, vocab, seed=seed)
    _write_json(dest / "zoo.json", {"family": fam.name, "mimics": fam.mimics, "template": fam.template})
    return dest


def build_zoo(root: Path | str, names: list[str] | None = None) -> dict[str, Path]:
    """Build the families (all by default) under `root`, one folder each, named by family."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models; one thread is as fast and deterministic
    try:
        return {n: build_family(n, root / n) for n in (names or list(FAMILIES))}
    finally:
        torch.set_num_threads(threads)


def main(argv: list[str] | None = None) -> int:
    import time

    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(__doc__.strip().splitlines()[2].strip())
        print("families:", ", ".join(FAMILIES))
        return 0 if args else 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    start = time.monotonic()
    built = build_zoo(Path(args[0]), args[1:] or None)
    for name, path in built.items():
        print(f"{name}: {path}")
    print(f"built {len(built)} families in {time.monotonic() - start:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
