"""Batched generation for base and tuned: prompts rendered with the training template,
left-padded into batches so evaluating 1,000 prompts on a GPU is not one-at-a-time."""

from __future__ import annotations

from typing import Callable, Optional

DEFAULT_MAX_NEW_TOKENS = 64
SAMPLING = {"temperature": 0.7, "top_p": 0.95}


def _eos_ids(pair) -> list[int]:
    ids = pair.model.generation_config.eos_token_id
    ids = list(ids) if isinstance(ids, (list, tuple)) else ([ids] if ids is not None else [])
    if pair.tok.eos_token_id is not None and pair.tok.eos_token_id not in ids:
        ids.append(pair.tok.eos_token_id)
    return ids


def generate(
    pair,
    prompts: list[list[dict]],
    which: str,
    *,
    batch_size: int = 8,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    sample: bool = False,
    seed: int = 0,
    progress: Optional[Callable[[int], None]] = None,
    images: Optional[list[list[str]]] = None,
) -> list[str]:
    """One answer per prompt from the base or the tuned model: greedy, or sampled with a
    fixed seed (the same seed gives the same texts on the same machine). `images`: per
    prompt, the image paths its <image> placeholders name (a vision-language model)."""
    import torch

    texts = [pair.chat.render(p, add_generation_prompt=True) for p in prompts]
    eos = _eos_ids(pair)
    kw = dict(max_new_tokens=max_new_tokens, eos_token_id=eos, pad_token_id=pair.tok.pad_token_id)
    kw.update(dict(do_sample=True, **SAMPLING) if sample else dict(do_sample=False, temperature=None, top_p=None))
    out: list[str] = []
    with pair.side(which), torch.no_grad():
        for i in range(0, len(texts), max(1, batch_size)):
            chunk = texts[i : i + max(1, batch_size)]
            if pair.proc is not None:
                from PIL import Image

                pics = [Image.open(p).convert("RGB") for ps in (images or [])[i : i + len(chunk)] for p in ps]
                enc = pair.proc(
                    text=chunk,
                    images=pics or None,
                    return_tensors="pt",
                    padding=True,
                    padding_side="left",
                    add_special_tokens=False,
                ).to(pair.device)
            else:
                enc = pair.tok(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(pair.device)
            if sample:
                torch.manual_seed(seed + i)
            gen = pair.model.generate(**enc, **kw)
            new = gen[:, enc["input_ids"].shape[1] :]
            out += [t.strip() for t in pair.tok.batch_decode(new, skip_special_tokens=True)]
            if progress:
                progress(len(chunk))
    return out
