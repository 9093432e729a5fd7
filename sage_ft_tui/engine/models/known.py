"""Every model the tool knows by name, described once.

- the built-in demo (`tiny-demo`: its shape and build are models.tiny's);
- the hub models named without being asked for: the Model step's defaults (listed before they
  are downloaded), the quickstart's default per task on a GPU, the legacy API's
  `TrainingConfig.model_name`, the base model the README's estimate examples use;
- for each hub model, the facts that let the tool work before the first download: its model
  card's parameter count and weights size (the catalogue), and its published config.json's
  shape keys (the memory estimate).

The catalogue (models.catalog), the estimate's shapes (models.shape), the quickstart
(recipes.quickstart) and the legacy API (config.legacy) read this table; nothing else names a
hub model in code (tests/unit/test_known_models.py checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

from sage_ft_tui.engine.models.tiny import TINY_NAME


@dataclass(frozen=True)
class KnownModel:
    id: str  # the hub id
    params: int  # from the model card
    size_bytes: int  # the weights' download size
    config: Mapping[str, Any]  # the published config.json's keys the estimate and the list read
    listed: bool = True  # offered in the model list before it is downloaded

    @property
    def architecture(self) -> str:
        return str(self.config["architectures"][0])


def _frozen(**keys: Any) -> Mapping[str, Any]:
    return MappingProxyType(keys)


# Qwen2.5's published config.json files: the 7B and Coder-7B share one shape, as do the 1.5B
# and Coder-1.5B.
_QWEN25_7B = _frozen(
    architectures=["Qwen2ForCausalLM"],
    hidden_size=3584,
    intermediate_size=18944,
    num_hidden_layers=28,
    num_attention_heads=28,
    num_key_value_heads=4,
    vocab_size=152064,
    tie_word_embeddings=False,
    max_position_embeddings=32768,
    model_type="qwen2",
    hidden_act="silu",
    torch_dtype="bfloat16",
)
_QWEN25_1_5B = _frozen(
    architectures=["Qwen2ForCausalLM"],
    hidden_size=1536,
    intermediate_size=8960,
    num_hidden_layers=28,
    num_attention_heads=12,
    num_key_value_heads=2,
    vocab_size=151936,
    tie_word_embeddings=True,
    max_position_embeddings=32768,
    model_type="qwen2",
    hidden_act="silu",
    torch_dtype="bfloat16",
)

CODER_1_5B = KnownModel("Qwen/Qwen2.5-Coder-1.5B-Instruct", 1_540_000_000, 3_090_000_000, _QWEN25_1_5B)
CODER_7B = KnownModel("Qwen/Qwen2.5-Coder-7B-Instruct", 7_620_000_000, 15_230_000_000, _QWEN25_7B)
CHAT_7B = KnownModel("Qwen/Qwen2.5-7B-Instruct", 7_620_000_000, 15_230_000_000, _QWEN25_7B)
# the chat tasks' quickstart default: not offered in the list before it is downloaded
CHAT_1_5B = KnownModel("Qwen/Qwen2.5-1.5B-Instruct", 1_540_000_000, 3_090_000_000, _QWEN25_1_5B, listed=False)
# the base model the README's `estimate --gpu` examples plan for (the Instruct model's shape)
BASE_7B = KnownModel("Qwen/Qwen2.5-7B", 7_620_000_000, 15_230_000_000, _QWEN25_7B, listed=False)

KNOWN: Mapping[str, KnownModel] = MappingProxyType(
    {m.id: m for m in (CODER_1_5B, CODER_7B, CHAT_7B, CHAT_1_5B, BASE_7B)}
)
# The Model step's defaults, in the list's order (after tiny-demo).
DEFAULTS: tuple[str, ...] = tuple(m.id for m in KNOWN.values() if m.listed)
# The seed's `sage finetune` default, kept by the legacy API (TrainingConfig.model_name).
LEGACY_DEFAULT = CODER_1_5B.id
# The built-in demo, named here so this table answers "which models does the tool know".
DEMO = TINY_NAME


def quickstart_model(task: str) -> str:
    """The quickstart's default on a GPU: the code model for the code task, the chat model
    for every other task."""
    return (CODER_1_5B if task == "code" else CHAT_1_5B).id


def known_model(model_id: str) -> KnownModel | None:
    """The table's entry for a hub id (exact spelling), None for any other model."""
    return KNOWN.get(model_id)


__all__ = ["KnownModel", "KNOWN", "DEFAULTS", "LEGACY_DEFAULT", "DEMO", "quickstart_model", "known_model"]
