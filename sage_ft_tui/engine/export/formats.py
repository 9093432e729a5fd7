"""The export formats, one entry each: the `--format` value, its help, and the choices the TUI's
Export screen offers for it (a label, the GGUF type, a note on what it writes). The CLI's
help, `export_run`'s check and the Export screen read this list (docs/ARCHITECTURE.md, "How
to add an export format"). Torch-free."""

from __future__ import annotations

from dataclasses import dataclass

from sage_ft_tui.engine.export.to_gguf import QUANTIZER_TYPES, QUANTS


@dataclass(frozen=True)
class ExportChoice:
    label: str  # the Export screen's list
    quant: str  # the GGUF type (--quant), "" for a format without one
    note: str  # what it writes, shown under Progress until an export says what it wrote


@dataclass(frozen=True)
class ExportFormat:
    name: str  # --format
    help: str  # a few words for --format's help
    choices: tuple[ExportChoice, ...]


EXPORT_FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat(
            "gguf",
            "llama.cpp / Ollama",
            (
                ExportChoice(
                    "GGUF q8_0",
                    "q8_0",
                    "q8_0: 8-bit GGUF (about half the f16 size, near-lossless) + an Ollama Modelfile.",
                ),
                ExportChoice("GGUF f16", "f16", "f16: the 16-bit GGUF, the largest and exact + an Ollama Modelfile."),
                ExportChoice(
                    "GGUF q4_k_m (gguf extra)",
                    "q4_k_m",
                    "q4_k_m needs llama.cpp's llama-quantize (the gguf extra): f16 first, then quantized.",
                ),
            ),
        ),
        ExportFormat(
            "hf",
            "merged safetensors folder",
            (
                ExportChoice(
                    "HF folder (safetensors)",
                    "",
                    "HF folder: the merged model as safetensors shards, loadable by transformers and vLLM.",
                ),
            ),
        ),
    )
}


def format_help() -> str:
    """--format's help: every format and what it is."""
    return " | ".join(f"{f.name} ({f.help})" for f in EXPORT_FORMATS.values()) + "."


def quant_help() -> str:
    plain = [q for q in QUANTS if q not in QUANTIZER_TYPES]
    return f"GGUF type: {' | '.join(plain)}, or {' | '.join(QUANTIZER_TYPES)} (the gguf extra)."
