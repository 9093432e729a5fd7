"""How an export is told to people: the progress stages and the result's lines, shared
by the CLI and the TUI (light: no ML imports)."""

from __future__ import annotations

from typing import Callable

STAGES: dict[str, Callable[[dict], str]] = {
    "merge": lambda i: "no merged model yet: merging first",
    "load": lambda i: f"loading {i.get('model')}",
    "convert": lambda i: f"llama.cpp's converter: {i.get('arch')} → {i.get('outtype')}",
    "quantize": lambda i: f"llama.cpp's quantizer: {i.get('from')} → {i.get('quant')}",
    "check": lambda i: "llama.cpp loads the file: tokenization vs the model's tokenizer",
    "logits": lambda i: "llama.cpp's logits vs the merged model's",
    "save": lambda i: f"saving safetensors (shards up to {i.get('max_shard_size')})",
    "push": lambda i: f"uploading to {i.get('repo')}",
}


def summary(entry: dict) -> list[str]:
    """What an export entry says, in lines for people (the CLI and the TUI)."""
    out = []
    if entry.get("format") == "gguf":
        out.append(f"{entry.get('arch')} · tokenizer pre {entry.get('tokenizer_pre')} · {entry.get('quant')}")
    chk = entry.get("check") or {}
    tok, lg = chk.get("tokenization"), chk.get("logits")
    if tok:
        out.append(
            f"llama.cpp tokenizes {tok['texts']} texts ({tok['tokens']} tokens) exactly like the model's tokenizer"
        )
    added = (tok or {}).get("bos_eos") or {}
    if added.get("identical") is False:
        out.append(
            f"around a plain prompt llama.cpp adds {added['llama_cpp'] or 'nothing'}, transformers' tokenizer "
            f"{added['hf'] or 'nothing'} (chat prompts are the same: their template writes it)"
        )
    if lg:
        out.append(
            f"llama.cpp vs merged model: greedy agreement {lg['greedy_agreement']:.0%} over {lg['positions']} positions, "
            f"max |Δlogit| {lg['max_abs_diff']:.3g} (relative {lg['max_rel_diff']:.2g}), mean {lg['mean_abs_diff']:.2g}"
        )
    mid = (entry.get("check_16bit") or {}).get("logits")
    if mid:
        out.append(
            f"before quantizing, the {entry.get('quantized_from')} file: greedy agreement {mid['greedy_agreement']:.0%}, "
            f"max |Δlogit| relative {mid['max_rel_diff']:.2g} (≤ {mid['tolerance']})"
        )
    if chk.get("note"):
        out.append(chk["note"])
    if entry.get("modelfile"):
        out.append(f"Ollama: cd {entry['modelfile'].rsplit('/', 1)[0]} && ollama create NAME -f Modelfile")
    elif entry.get("format") == "gguf":
        out.append(
            "no Modelfile written: " + "; ".join(entry.get("modelfile_notes") or ["its template was not derived"])
        )
    for note in entry.get("modelfile_notes") or [] if entry.get("modelfile") else []:
        out.append(f"Modelfile: {note}")
    return out
