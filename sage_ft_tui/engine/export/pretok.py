"""llama.cpp's BPE pre-tokenizer name (GGUF `tokenizer.ggml.pre`) derived from a
tokenizer.json's own pre_tokenizer.

llama.cpp's converter names the pre-tokenizer by hashing the tokenization of a fixed text
(`get_vocab_base_pre`); that works for the released vocabularies it lists, and raises for
any other (a fine-tuned or newly trained vocabulary with the same splitting rules). The
splitting rules themselves are in tokenizer.json: a Sequence of Split(regex) / Digits /
ByteLevel steps. llama.cpp's src/llama-vocab.cpp maps each pre name to the regexes it
splits by, and notes beside each the regex as tokenizer.json writes it; PRE below is that
mapping (tokenizer.json's form), read from llama-vocab.cpp. The derived name is only a
proposal: the export's llama.cpp check tokenizes with the written file and nothing is
kept unless every text gives the same ids."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

# The regex ByteLevel(use_regex=True) splits by (GPT-2's).
GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
_CONTRACTIONS = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)"
LLAMA3 = _CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2 = _CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN35 = (
    _CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_UPPER = r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]"
_LOWER = r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]"
TEKKEN = (
    rf"[^\r\n\p{{L}}\p{{N}}]?{_UPPER}*{_LOWER}+|[^\r\n\p{{L}}\p{{N}}]?{_UPPER}+{_LOWER}*"
    r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
GPT4O = (
    rf"[^\r\n\p{{L}}\p{{N}}]?{_UPPER}*{_LOWER}+{_CONTRACTIONS}?|[^\r\n\p{{L}}\p{{N}}]?{_UPPER}+{_LOWER}*{_CONTRACTIONS}?"
    r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
SEED_CODER = _CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+"
DEEPSEEK3 = [
    r"\p{N}{1,3}",
    r"[一-龥぀-ゟ゠-ヿ]+",
    r"[!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+",
]


@dataclass(frozen=True)
class Pre:
    name: str  # llama.cpp's tokenizer.ggml.pre
    pieces: tuple[str, ...]  # the split regexes, in order, as tokenizer.json writes them
    ignore_merges: bool  # llama.cpp sets it for this name (a whole word in the vocab is one token)


# From llama.cpp src/llama-vocab.cpp (llm_tokenizer_bpe: the regex of each pre type, and
# llama_vocab::impl::load: which name selects which type and whether it ignores merges).
PRE: tuple[Pre, ...] = (
    Pre("gpt-2", (GPT2,), False),
    Pre("llama3", (LLAMA3,), True),
    Pre("smaug-bpe", (LLAMA3,), False),
    Pre("qwen2", (QWEN2,), False),
    Pre("qwen35", (QWEN35,), False),
    Pre("tekken", (TEKKEN,), True),
    Pre("gpt-4o", (GPT4O,), False),
    Pre("smollm", (r"\p{N}", GPT2), False),
    Pre("seed-coder", (SEED_CODER,), False),
    Pre("deepseek-v3", tuple(DEEPSEEK3), False),
)

# llama.cpp writes the case-insensitive contractions group out by hand; both forms mean the same.
_SPELLED = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"


def _canon(regex: str) -> str:
    return regex.replace(_SPELLED, _CONTRACTIONS)


def split_pieces(pre: Optional[dict]) -> Optional[list[str]]:
    """The regexes a tokenizer.json pre_tokenizer splits by, in order; None when it does
    something llama.cpp's BPE pre-tokenizers cannot (another step type, a prefix space,
    a split that is not 'Isolated')."""
    if not pre:
        return None
    kind = pre.get("type")
    if kind == "Sequence":
        out: list[str] = []
        for p in pre.get("pretokenizers") or []:
            got = split_pieces(p)
            if got is None:
                return None
            out += got
        return out
    if kind == "Split":
        pat = pre.get("pattern") or {}
        if pre.get("invert") or pre.get("behavior") != "Isolated" or "Regex" not in pat:
            return None
        return [_canon(pat["Regex"])]
    if kind == "ByteLevel":
        if pre.get("add_prefix_space"):
            return None
        return [GPT2] if pre.get("use_regex", True) else []
    if kind == "Digits":
        return [r"\p{N}" if pre.get("individual_digits") else r"\p{N}+"]
    return None


def derive(tokenizer_json: Path) -> tuple[Optional[str], str]:
    """(llama.cpp pre name or None, why) for a byte-level BPE tokenizer.json."""
    try:
        tj = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return None, f"cannot read {tokenizer_json}: {e}"
    model = tj.get("model") or {}
    if model.get("type") != "BPE" or (tj.get("decoder") or {}).get("type") != "ByteLevel":
        return None, "not a byte-level BPE tokenizer"
    norm = (tj.get("normalizer") or {}).get("type")
    if norm not in (None, "NFC"):  # NFC (Qwen's) changes nothing in text that is already NFC, as text is
        return None, f"its normalizer ({norm}) has no llama.cpp equivalent"
    pieces = split_pieces(tj.get("pre_tokenizer"))
    if pieces is None:
        return None, f"its pre_tokenizer ({json.dumps(tj.get('pre_tokenizer'))[:200]}) has no llama.cpp equivalent"
    ignore = bool(model.get("ignore_merges", False))
    same = [p for p in PRE if list(p.pieces) == pieces]
    if not same:
        return None, f"no llama.cpp pre-tokenizer splits by {pieces}"
    exact = [p for p in same if p.ignore_merges == ignore]
    return (exact or same)[0].name, "derived from tokenizer.json's pre_tokenizer"
