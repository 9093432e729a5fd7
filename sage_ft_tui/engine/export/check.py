"""The GGUF round-trip check, done by llama.cpp itself (`export.llama`).

1. **Tokenization** — the file's vocabulary, loaded by llama.cpp, must tokenize every probe
   text to exactly the ids the merged folder's tokenizer gives (the tokenizer training
   used): conversations rendered with the model's own chat template (special tokens
   parsed as such), with and without the tokenizer's own BOS/EOS, and texts chosen to
   break pre-tokenizers (whitespace runs, digits, contractions, scripts without spaces,
   emoji). Any difference fails the check; the export then writes nothing.
2. **Logits** — llama.cpp evaluates the same token ids as the merged model (transformers,
   float32, eager attention) and the report gives greedy next-token agreement and the
   max/mean |logit difference|. Files llama.cpp should reproduce closely (16/32-bit,
   q8_0) fail beyond a tolerance on the max difference relative to the largest logit; a
   K-quant's own figures are reported, not judged (their error is the quantization's), and
   the 16-bit file it is made from is judged first, so a conversion error is not hidden
   behind the quantization's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional

from sage_ft_tui.engine.deploy.artifacts import config_dtype
from sage_ft_tui.engine.deploy.merge import quiet_hf
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.export import llama
from sage_ft_tui.engine.models.build_lock import MODEL_BUILD

Say = Callable[[str, dict], None]

# max |Δlogit| / max |logit| allowed; K-quants are not judged.
TOLERANCE = {"f32": 2e-2, "f16": 2e-2, "bf16": 4e-2, "q8_0": 8e-2}

# Texts that split differently under the wrong pre-tokenizer (llama.cpp's own converter
# hashes the tokenization of a text like the last one to recognise a vocabulary).
PROBE_TEXTS = [
    "Hello, world! What is 2 + 2?",
    "The year 1999 had 365 days; pi is 3.14159, and 1,234,567.89 + 0.001 = 1234567.891",
    "  two leading spaces,\ttabs\t\tand\n\nblank lines\r\n   trailing   \n",
    "I'm sure you'll see they've said it's fine, DON'T SHOUT, we'Ve a'lL",
    "Ünïcödé: naïve café, Straße, Ελληνικά, русский текст, العربية, हिन्दी, 日本語のテキスト, 中文句子, 한국어",
    "emoji 🦙🚀 ✅ 😶‍🌫️ and CJK你好世界 without spaces",
    "def f(x):\n    return x ** 2  # code\n\n\n    indented\n",
    "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis concatenated) ✅ 🦙🦙 3 33 333 "
    "3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= "
    "нещо на Български ''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? "
    "'M not sure I'll make it, 'D you like some tea? We'Ve a'lL",
]

CONVERSATIONS = [
    [
        {"role": "system", "content": "You are a helpful assistant. Answer briefly."},
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And of Germany? Count: 1, 22, 333."},
    ],
    [
        {"role": "user", "content": "Übersetze: 'good morning' — 日本語でも。"},
        {"role": "assistant", "content": "Guten Morgen. おはようございます。"},
        {"role": "user", "content": "  Thanks!\n\nBye  "},
    ],
]


def unrepresentable(model_dir: Path) -> list[str]:
    """What of a tokenizer.json llama.cpp's tokenizer cannot do (a GGUF has no field for
    it), when its tokenization differs: the likely causes, for the message."""
    try:
        tj = json.loads((Path(model_dir) / "tokenizer.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    out = []
    stripping = [t["content"] for t in tj.get("added_tokens") or [] if t.get("rstrip") or t.get("lstrip")]
    if stripping:
        out.append(
            f"added tokens that strip the whitespace beside them ({', '.join(stripping[:3])}"
            f"{', …' if len(stripping) > 3 else ''}: rstrip/lstrip)"
        )
    pres = tj.get("pre_tokenizer") or {}
    for p in pres.get("pretokenizers") or [pres]:
        if p.get("type") == "Metaspace" and p.get("prepend_scheme") == "first":
            out.append(
                "a SentencePiece space prefix only at the start of the text (Metaspace prepend_scheme 'first'); "
                "llama.cpp adds it after every special token too"
            )
    return out


def _renders(chat) -> list[tuple[str, str]]:
    """Conversations rendered by the model's own template (the text training tokenized)."""
    out = []
    for i, conv in enumerate(CONVERSATIONS):
        for gen in (True, False):
            try:
                text = chat.render(conv, add_generation_prompt=gen)
            except SageError:  # a template without a system role: the same without it
                try:
                    text = chat.render([m for m in conv if m["role"] != "system"], add_generation_prompt=gen)
                except SageError:
                    continue
            out.append((f"chat {i + 1}{' + generation prompt' if gen else ''}", text))
    return out


def tokenization(model, chat, merged: Path) -> dict:
    """llama.cpp's ids (`model`: llama.GGUFModel) vs the merged folder's tokenizer, for every
    probe: without BOS/EOS the tokenizer training used (tokenizer.json), with them
    transformers' tokenizer (which adds what tokenizer_config.json says it adds)."""
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(merged))
    cases: list[tuple[str, str, bool]] = [(label, text, False) for label, text in _renders(chat)]
    cases += [(f"text {i + 1}", t, False) for i, t in enumerate(PROBE_TEXTS)]
    cases += [(f"text {i + 1} + special tokens", t, True) for i, t in enumerate(PROBE_TEXTS[:3])]
    diffs = []
    n_tokens = 0
    added: dict = {"identical": True}
    for label, text, special in cases:
        want = list(hf(text)["input_ids"]) if special else chat.encode(text)
        got = model.tokenize(text, add_special=special)
        if special:  # what each adds around a plain prompt (BOS/EOS): reported, the text itself is judged below
            plain = chat.encode(text)
            if got != want:
                added = {
                    "identical": False,
                    "llama_cpp": [chat.tok.id_to_token(t) for t in _around(got, plain)],
                    "hf": [chat.tok.id_to_token(t) for t in _around(want, plain)],
                }
            got, want = _strip_around(got, plain), _strip_around(want, plain)
        n_tokens += len(want)
        if got != want:
            at = next((k for k, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
            diffs.append(
                {
                    "text": label,
                    "at_token": at,
                    "llama_cpp": [chat.tok.id_to_token(t) for t in got[at : at + 4]],
                    "hf": [chat.tok.id_to_token(t) for t in want[at : at + 4]],
                }
            )
    return {
        "identical": not diffs,
        "texts": len(cases),
        "tokens": n_tokens,
        "differences": diffs[:5],
        "bos_eos": added,
    }


def _around(ids: list[int], plain: list[int]) -> list[int]:
    """The ids a tokenizer added around `plain` (its BOS/EOS), if `plain` is inside."""
    for i in range(len(ids) - len(plain) + 1):
        if ids[i : i + len(plain)] == plain:
            return ids[:i] + ids[i + len(plain) :]
    return ids


def _strip_around(ids: list[int], plain: list[int]) -> list[int]:
    for i in range(len(ids) - len(plain) + 1):
        if ids[i : i + len(plain)] == plain:
            return plain
    return ids


def logits(model, merged: Path, chat, quant: str, max_tokens: int = 96) -> dict:
    """llama.cpp's logits vs the merged model's on the rendered conversations."""
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM

    quiet_hf()
    prompts = [chat.encode(text)[:max_tokens] for _, text in _renders(chat)[:2]]
    prompts = [p for p in prompts if len(p) > 1]
    # float32 when it fits in half the free memory, else the folder's own dtype (bf16: its
    # rounding is then part of the difference, so the tolerance doubles; the report says so)
    import psutil

    weights = sum(f.stat().st_size for f in Path(merged).glob("*.safetensors"))
    fp32 = (
        weights * (2 if weights and "float32" not in config_dtype(Path(merged)) else 1)
        < psutil.virtual_memory().available / 2
    )
    with MODEL_BUILD:
        ref = AutoModelForCausalLM.from_pretrained(
            str(merged), dtype=torch.float32 if fp32 else "auto", attn_implementation="eager"
        ).eval()
    agree = total = 0
    max_abs = sum_abs = n = 0.0
    scale = 1e-6
    for ids in prompts:
        with torch.no_grad():
            want = ref(torch.tensor([ids])).logits[0].float().numpy()
        got = model.logits(ids)
        v = min(want.shape[-1], got.shape[-1])
        want, got = want[:, :v], got[:, :v]
        d = np.abs(got - want)
        max_abs = max(max_abs, float(d.max()))
        sum_abs += float(d.sum())
        n += d.size
        scale = max(scale, float(np.abs(want).max()))
        agree += int((got.argmax(-1) == want.argmax(-1)).sum())
        total += len(ids)
    del ref
    rel = max_abs / scale
    tol = TOLERANCE.get(quant)
    if tol is not None and not fp32:
        tol *= 2
    return {
        "positions": total,
        "greedy_agreement": agree / total if total else None,
        "max_abs_diff": max_abs,
        "mean_abs_diff": sum_abs / n if n else None,
        "max_rel_diff": rel,
        "tolerance": tol,
        "reference": "transformers float32"
        if fp32
        else "transformers in the folder's dtype (too big for float32 here)",
        "passed": bool(np.isfinite(rel) and (tol is None or rel <= tol)),
    }


def check_gguf(
    path: Path, merged: Path, chat, quant: str, *, with_logits: bool = True, say: Say = lambda s, i: None
) -> dict:
    """Both checks on the GGUF at `path`; raises SageError when the file must not be kept."""
    say("check", {"by": "llama.cpp"})
    model = llama.GGUFModel(path, vocab_only=not with_logits)
    try:
        tok = tokenization(model, chat, merged)
        report: dict = {"by": "llama.cpp", "binding": f"llama-cpp-python {llama.version()}", "tokenization": tok}
        report["add_bos"] = model.add_bos
        if not tok["identical"]:
            d = tok["differences"][0]
            why = unrepresentable(merged)
            tok["likely_causes"] = why
            raise SageError(
                f"llama.cpp tokenizes the exported file differently from the model's tokenizer "
                f"({len(tok['differences'])} of {tok['texts']} texts; first: {d['text']} at token {d['at_token']}: "
                f"llama.cpp {d['llama_cpp']} vs {d['hf']})" + (f"; the tokenizer has {'; '.join(why)}" if why else ""),
                kind="model",
                hint="nothing was written; export --format hf keeps the tokenizer exactly",
            )
        if with_logits:
            say("logits", {})
            lg = report["logits"] = logits(model, merged, chat, quant)
            if not lg["passed"]:
                raise SageError(
                    f"llama.cpp's logits ({quant}) differ from the merged model's (max relative difference "
                    f"{lg['max_rel_diff']:.3g} > {lg['tolerance']}, greedy agreement {lg['greedy_agreement']:.0%})",
                    kind="model",
                    hint="nothing was written; report this with the model's config.json",
                )
    finally:
        model.close()
    return report


def unchecked_note() -> str:
    return f"not checked by llama.cpp: its Python binding is not installed ({llama.INSTALL} to have it checked)"


def add_bos_of(meta: dict, report: Optional[dict]) -> bool:
    """Whether llama.cpp adds a BOS itself: llama.cpp's answer when it was asked, else the file's flag."""
    if report and "add_bos" in report:
        return bool(report["add_bos"])
    return bool(meta.get("add_bos_token"))
