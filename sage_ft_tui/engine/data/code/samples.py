"""The code task's samples: a scanned repository's files → text records for the trainer.

Samples (records {"text": ...}, the text-task path: the trainer adds EOS, trains on all)
    Each file is cut into chunks of at most `max_length` tokens, *including* its header
    and the EOS the trainer appends. Cuts fall on line boundaries; a single line longer
    than a chunk is cut at a token boundary. Every chunk starts with a one-line header in
    the file's own comment syntax, so a sample stays valid source:

        # path: src/app.py            (Python, shell, YAML, TOML, ...)
        // path: web/main.ts          (C-family, Go, Rust, Java, JS/TS, ...)
        <!-- path: README.md -->      (Markdown, HTML)
        .. path: docs/index.rst       (reStructuredText)

    With `fim_rate` > 0 and a tokenizer that has <|fim_prefix|>/<|fim_suffix|>/<|fim_middle|>,
    each chunk *also* yields, with probability fim_rate, a fill-in-the-middle sample in PSM
    order: `<|fim_prefix|>{header}{prefix}<|fim_suffix|>{suffix}<|fim_middle|>{middle}`
    (two character-level cut points, as StarCoder does). The plain chunk is kept, so the
    model still sees each file whole, left to right.

    Exact duplicate files (same bytes under another path) are kept once; exact duplicate
    samples are dropped. Order is deterministic: files by path, chunks in file order, a
    chunk's FIM sample right after it; the FIM draws are seeded by (seed, path, chunk).

    Files whose text contains one of the tokenizer's special tokens (e.g. a chat
    template that spells out the end-of-turn token) are skipped ("special_tokens"): the trainer's tokenizer
    would read it as the real control token and teach the model to stop mid-file.

Torch-free and textual-free.
"""

from __future__ import annotations

import bisect
import hashlib
import os
import random
import time
from dataclasses import dataclass, field
from typing import NamedTuple, Optional

from sage_ft_tui.engine.data.code.languages import header_for
from sage_ft_tui.engine.data.code.scan import REPORT_LIST_LIMIT, ScanFile, ScanResult
from sage_ft_tui.engine.errors import SageError


@dataclass
class CodeSamples:
    records: list[dict]
    wheres: list[str]
    tokens: int = 0  # tokens in the kept samples, EOS included
    chunks: int = 0
    fim_samples: int = 0
    duplicates: int = 0
    special_token_files: list[str] = field(default_factory=list)
    fim: str = "off"  # "on", "off" (rate 0), or "unavailable" (tokenizer lacks the tokens)
    seconds: float = 0.0


def _special_tokens(tok) -> list[str]:
    try:
        dec = tok.tok.get_added_tokens_decoder()
    except AttributeError:
        return []
    return sorted({t.content for t in dec.values() if getattr(t, "special", False) and t.content})


def _line_starts(text: str) -> list[int]:
    starts = [0]
    i = text.find("\n")
    while i != -1:
        if i + 1 < len(text):
            starts.append(i + 1)
        i = text.find("\n", i + 1)
    return starts


def chunk_text(tok, text: str, budget: int, *, enc=None, verify: bool = True) -> list[str]:
    """Cut `text` into pieces of at most `budget` tokens (as `tok.encode` counts them),
    at line boundaries where a line fits, else at token boundaries. Concatenated, the
    pieces give back `text` exactly.

    `enc`: the text's encoding when the caller has it (batch encoding). verify=False skips
    re-encoding each piece: counts then come from the whole text's encoding, which a piece
    encoded alone can exceed by a token or two (merges across a cut) — the caller checks."""
    if budget < 1:
        raise SageError(
            f"max_length leaves no room for code (budget {budget} tokens)",
            kind="config",
            hint="raise training.max_length",
        )
    if enc is None:
        enc = tok.tok.encode(text, add_special_tokens=False)
    n = len(enc)
    if n <= budget:
        return [text]
    fit = (lambda piece: _fit(tok, piece, budget)) if verify else (lambda piece: [piece])
    # tok_start[k] = char where token k starts; the piece of tokens [a, b) is text[start(a):start(b)].
    tok_start = [o[0] for o in enc.offsets]
    line_starts = _line_starts(text)
    pieces: list[str] = []
    a_char, a_tok = 0, 0
    while True:
        if n - a_tok <= budget:
            pieces.extend(fit(text[a_char:]))
            break
        limit_tok = a_tok + budget  # first token not in this piece
        limit_char = tok_start[limit_tok]
        # Last line start in (a_char, limit_char].
        j = bisect.bisect_right(line_starts, limit_char) - 1
        cut = line_starts[j] if j >= 0 and line_starts[j] > a_char else limit_char
        if cut <= a_char:  # one token beyond reach; never loop forever
            cut = tok_start[min(n - 1, a_tok + 1)] if a_tok + 1 < n else len(text)
            if cut <= a_char:
                cut = len(text)
        pieces.extend(fit(text[a_char:cut]))
        a_char = cut
        a_tok = bisect.bisect_left(tok_start, cut)
        if a_char >= len(text):
            break
    return [p for p in pieces if p]


def _fit(tok, piece: str, budget: int) -> list[str]:
    """A piece re-encoded alone can count a few tokens more than its slice of the whole
    file (merges across the cut); split it again until each part truly fits."""
    if len(tok.encode(piece)) <= budget:
        return [piece]
    lines = piece.splitlines(keepends=True)
    if len(lines) > 1:
        mid = len(lines) // 2
        # Move the cut back line by line: the first part shrinks, the rest is re-fitted.
        head = "".join(lines[:-1])
        if len(tok.encode(head)) <= budget:
            return [head] + _fit(tok, lines[-1], budget)
        return _fit(tok, "".join(lines[:mid]), budget) + _fit(tok, "".join(lines[mid:]), budget)
    # One line longer than a chunk: cut at the start of token number `budget`, moving back
    # a token at a time until the head, encoded alone, fits.
    starts = [o[0] for o in tok.tok.encode(piece, add_special_tokens=False).offsets]
    k = min(budget, len(starts) - 1)
    while k > 1 and (starts[k] <= 0 or len(tok.encode(piece[: starts[k]])) > budget):
        k -= 1
    cut = starts[k] if 0 < starts[k] < len(piece) else max(1, len(piece) // 2)
    return [piece[:cut]] + _fit(tok, piece[cut:], budget)


def fim_sample(rng: random.Random, header: str, body: str, tokens: dict[str, str]) -> Optional[str]:
    """PSM fill-in-the-middle: <prefix-tok>{header}{prefix}<suffix-tok>{suffix}<middle-tok>{middle}."""
    if len(body) < 3:
        return None
    i, j = sorted(rng.sample(range(1, len(body)), 2)) if len(body) > 3 else (1, 2)
    prefix, middle, suffix = body[:i], body[i:j], body[j:]
    return f"{tokens['prefix']}{header}{prefix}{tokens['suffix']}{suffix}{tokens['middle']}{middle}"


FIM_NAMES = {"prefix": "<|fim_prefix|>", "suffix": "<|fim_suffix|>", "middle": "<|fim_middle|>"}
FIM_SLACK = 8  # tokens kept free for the three FIM tokens and merges broken by the two cuts


def _fit_with_header(tok, header: str, body: str, budget: int, limit: int) -> list[tuple[str, int]]:
    """(header + part, tokens) for parts of `body`, each within `limit` with its header."""
    out = []
    for part in _fit(tok, body, budget):
        t = header + part
        nt = len(tok.encode(t))
        if nt <= limit or budget <= 1:
            out.append((t, nt))
        else:  # the header merged with the part's first token(s): cut smaller
            out.extend(_fit_with_header(tok, header, part, budget - (nt - limit), limit))
    return out


ENCODE_BATCH = 512  # files (or samples) a batch: bounded memory


def _encode_many(tok, texts: list[str]) -> list:
    """Encodings of `texts`: the tokenizers thread pool where there are cores to spare (on
    one or two cores its overhead makes it slower than a plain loop)."""
    if (os.cpu_count() or 1) >= 4 and os.environ.get("TOKENIZERS_PARALLELISM", "true").lower() not in ("0", "false"):
        return tok.tok.encode_batch(texts, add_special_tokens=False)
    enc = tok.tok.encode
    return [enc(t, add_special_tokens=False) for t in texts]


def _count_tokens(tok, texts: list[str]) -> list[int]:
    out: list[int] = []
    for i in range(0, len(texts), ENCODE_BATCH):
        out.extend(len(e) for e in _encode_many(tok, texts[i : i + ENCODE_BATCH]))
    return out


class _Candidate(NamedTuple):
    text: str
    where: str
    is_fim: bool
    header: str
    body: str
    budget: int


def build_samples(
    scan: ScanResult, tok, *, max_length: int, fim_rate: float = 0.0, seed: int = 42, max_samples: Optional[int] = None
) -> CodeSamples:
    """Chunks (+ FIM samples) of the scanned files; `scan` must have been made with keep_text.

    Every sample's token count (as `tok.encode` counts it, + EOS) is at most max_length:
    files are encoded in batches, cut from those encodings, and every sample is then
    encoded once more, also in batches, to check; the rare piece that grew past its
    budget (merges across a cut) is cut again, the rare FIM sample that did is dropped."""
    t0 = time.perf_counter()
    fim_ids = getattr(tok, "fim_tokens", {}) or {}
    fim_ok = all(fim_ids.get(v) is not None for v in FIM_NAMES.values())
    use_fim = fim_rate > 0 and fim_ok
    out = CodeSamples(records=[], wheres=[], fim="on" if use_fim else ("unavailable" if fim_rate > 0 else "off"))
    eos = 1 if getattr(tok, "eos_id", None) is not None else 0
    files = _usable_files(scan, _special_tokens(tok), out)
    cands = _cut(
        files,
        tok,
        out,
        max_length=max_length,
        eos=eos,
        use_fim=use_fim,
        fim_rate=fim_rate,
        seed=seed,
        max_samples=max_samples,
    )
    _check_lengths(cands, tok, out, limit=max_length - eos, eos=eos)
    if max_samples and len(out.records) > max_samples:
        out.records, out.wheres = out.records[:max_samples], out.wheres[:max_samples]
        out.fim_samples = sum(1 for w in out.wheres if w.endswith(" fim"))
    out.seconds = time.perf_counter() - t0
    return out


def _usable_files(scan: ScanResult, specials: list[str], out: CodeSamples) -> list[ScanFile]:
    """The scanned files, less those that contain the tokenizer's special tokens (listed in `out`)."""
    files = []
    for f in scan.files:
        if f.text is None:
            raise ValueError("build_samples needs a scan made with keep_text=True")
        if specials and any(sp in f.text for sp in specials):
            out.special_token_files.append(f.path)
        else:
            files.append(f)
    return files


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _cut(
    files: list[ScanFile],
    tok,
    out: CodeSamples,
    *,
    max_length: int,
    eos: int,
    use_fim: bool,
    fim_rate: float,
    seed: int,
    max_samples: Optional[int],
) -> list[_Candidate]:
    """Step 1: every file cut into header+chunk samples (and FIM variants), deduplicated, in order."""
    limit = max_length - eos  # tokens of text a sample may hold
    header_cache: dict[str, int] = {}
    cands: list[_Candidate] = []
    seen: set[bytes] = set()
    for i in range(0, len(files), ENCODE_BATCH):
        batch = files[i : i + ENCODE_BATCH]
        encs = _encode_many(tok, [f.text or "" for f in batch])
        for f, enc in zip(batch, encs):
            text = f.text or ""
            header = header_for(f.path, f.language)
            h_tokens = header_cache.get(header)
            if h_tokens is None:
                h_tokens = header_cache[header] = len(tok.encode(header))
            budget = limit - h_tokens - (FIM_SLACK if use_fim else 0)
            if budget < 16:
                raise SageError(
                    f"training.max_length {max_length} is too short for code samples "
                    f"(the header of {f.path} alone takes {h_tokens} tokens)",
                    kind="config",
                    hint="raise training.max_length (512 or more suits code)",
                )
            for k, body in enumerate(chunk_text(tok, text, budget, enc=enc, verify=False)):
                where = f"{f.path}#{k + 1}"
                sample = header + body
                out.chunks += 1
                key = _digest(sample)
                if key in seen:
                    out.duplicates += 1
                else:
                    seen.add(key)
                    cands.append(_Candidate(sample, where, False, header, body, budget))
                if use_fim:
                    rng = random.Random(f"{seed}:{f.path}:{k}")
                    if rng.random() < fim_rate:
                        fs = fim_sample(rng, header, body, FIM_NAMES)
                        if fs is not None and (key := _digest(fs)) not in seen:
                            seen.add(key)
                            cands.append(_Candidate(fs, where + " fim", True, header, body, budget))
        if max_samples and len(cands) >= max_samples:
            break
    return cands


def _check_lengths(cands: list[_Candidate], tok, out: CodeSamples, *, limit: int, eos: int) -> None:
    """Step 2: count every sample's tokens in batches; cut again the few that grew past
    the limit (a FIM sample that did is dropped); the samples go into `out`."""
    counts = _count_tokens(tok, [c.text for c in cands])
    for c, n in zip(cands, counts):
        if n <= limit:
            pieces = [(c.text, c.where, n)]
        elif c.is_fim:
            continue
        else:
            parts = _fit_with_header(tok, c.header, c.body, c.budget, limit)
            pieces = [(t, c.where if j == 0 else f"{c.where}.{j}", nt) for j, (t, nt) in enumerate(parts)]
        for t, w, nt in pieces:
            out.records.append({"text": t})
            out.wheres.append(w)
            out.tokens += nt + eos
            if c.is_fim:
                out.fim_samples += 1


def code_report(scan: ScanResult, samples: Optional[CodeSamples]) -> dict:
    """The data_report.json `code_scan` section: counts, paths and reasons only."""
    rep = scan.to_report()
    if samples is not None:
        by = dict(rep["skipped_by_reason"])
        if samples.special_token_files:
            by["special_tokens"] = len(samples.special_token_files)
            rep["skipped"] = (
                rep["skipped"] + [{"path": p, "reason": "special_tokens"} for p in samples.special_token_files]
            )[:REPORT_LIST_LIMIT]
        rep["skipped_by_reason"] = dict(sorted(by.items(), key=lambda kv: (-kv[1], kv[0])))
        dropped = set(samples.special_token_files)
        kept = [f for f in scan.files if f.path not in dropped]
        langs: dict[str, int] = {}
        for f in kept:
            langs[f.language] = langs.get(f.language, 0) + 1
        rep["files_taken"] = len(kept)
        rep["bytes_taken"] = sum(f.size for f in kept)
        rep["languages"] = dict(sorted(langs.items(), key=lambda kv: (-kv[1], kv[0])))
        rep.update(
            {
                "tokens": samples.tokens,
                "samples": len(samples.records),
                "chunks": samples.chunks,
                "fim_samples": samples.fim_samples,
                "fim": samples.fim,
                "duplicate_samples": samples.duplicates,
                "build_seconds": round(samples.seconds, 3),
            }
        )
    return rep
