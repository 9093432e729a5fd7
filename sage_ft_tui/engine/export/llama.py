"""llama.cpp itself, through its maintained Python binding (`llama-cpp-python`, the
`gguf` extra): load a GGUF, tokenize, evaluate logits, quantize. The one module that
calls into llama.cpp; everything else asks `available()` first.

llama.cpp's own log lines are captured (not printed) and kept for error messages: a file
llama.cpp refuses is explained by llama.cpp's last words."""

from __future__ import annotations

import ctypes
import importlib.metadata
import importlib.util
import os
from pathlib import Path
from typing import Any, Optional

from sage_ft_tui.engine.errors import SageError

EXTRA = "gguf"
INSTALL = f"pip install 'sage-ft-tui[{EXTRA}]'"
# llama.cpp's llama_ftype for each type its quantizer makes here (llama.h).
FTYPES = {"q8_0": 7, "q4_k_m": 15, "q5_k_m": 17, "q6_k": 18}

_log: list[str] = []
_callback: Any = None


def available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def _lib():
    global _callback
    if not available():
        raise SageError(
            "llama.cpp's Python binding is not installed",
            kind="config",
            hint=f"{INSTALL} (it builds llama.cpp; a C++ compiler and cmake are needed)",
        )
    import llama_cpp

    if _callback is None:

        @llama_cpp.llama_log_callback
        def collect(level: int, text: bytes, user_data) -> None:
            _log.append(text.decode("utf-8", "replace"))
            del _log[:-200]

        _callback = collect
        llama_cpp.llama_log_set(_callback, ctypes.c_void_p(0))
    return llama_cpp


def last_words(n: int = 3) -> str:
    """llama.cpp's last error/warning lines, for a message."""
    lines = [ln.strip() for ln in "".join(_log).splitlines() if ln.strip()]
    bad = [ln for ln in lines if any(w in ln.lower() for w in ("error", "fail", "unknown", "invalid", "cannot"))]
    return " | ".join((bad or lines)[-n:])[:400]


class GGUFModel:
    """A GGUF file loaded by llama.cpp (vocabulary and weights), for tokenizing and logits."""

    def __init__(self, path: Path, *, n_ctx: int = 1024, vocab_only: bool = False, threads: int = 0):
        llama_cpp = _lib()
        _log.clear()
        threads = threads or _threads()
        try:
            self.llm = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_batch=n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                logits_all=True,
                vocab_only=vocab_only,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as e:
            raise SageError(
                f"llama.cpp could not load {path.name}: {last_words() or e}",
                where=str(path),
                kind="model",
                hint="nothing was written; report this with the model's config.json",
            ) from None
        self.n_ctx = n_ctx

    @property
    def add_bos(self) -> bool:
        return bool(self.llm._model.add_bos_token())

    def tokenize(self, text: str, *, add_special: bool = False) -> list[int]:
        """Special tokens written in `text` are parsed as such (as HF does)."""
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=add_special, special=True))

    def logits(self, ids: list[int]):
        """Next-token logits at every position, a float32 array (len(ids), vocab)."""
        import numpy as np

        if len(ids) > self.n_ctx:
            ids = ids[: self.n_ctx]
        self.llm.reset()
        self.llm.eval(ids)
        return np.array(self.llm.scores[: len(ids), :], dtype=np.float32)

    def close(self) -> None:
        self.llm.close()


def _threads() -> int:
    return max(1, min(os.cpu_count() or 2, 16))


def quantize(src: Path, dst: Path, quant: str, *, threads: int = 0) -> None:
    """llama.cpp's llama_model_quantize: `src` (an f16 GGUF) → `dst` as `quant`."""
    llama_cpp = _lib()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FTYPES[quant]
    params.nthread = threads or _threads()
    _log.clear()
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    if rc != 0:
        raise SageError(
            f"llama.cpp could not quantize to {quant}: {last_words() or f'error {rc}'}",
            kind="model",
            hint="nothing was written; export --quant f16 works without the quantizer",
        )


def version() -> Optional[str]:
    if not available():
        return None

    try:
        return importlib.metadata.version("llama_cpp_python")
    except importlib.metadata.PackageNotFoundError:
        return None
