"""The estimate's parameter counts, read from config.json alone, are the real ones for every
model-zoo family: LoRA trainable parameters against peft's own count on the built model (fused
projections of Phi-3, head_dim != hidden/heads of Mistral-Nemo, GQA, tied embeddings), for
all-linear and for named targets, within 1%; base parameters likewise."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from tests.zoo.families import FAMILIES  # noqa: E402

NAMES = list(FAMILIES)


def _real(folder, r: int, targets):
    """(LoRA trainable, base parameters) of the model built from the folder's config (meta
    device: no weights read), with peft's LoRA on `targets`."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(str(folder)))
    base = sum(p.numel() for p in model.parameters())
    peft = get_peft_model(model, LoraConfig(r=r, target_modules=targets))
    return peft.get_nb_trainable_parameters()[0], base


@pytest.mark.parametrize("name", NAMES)
def test_lora_and_base_counts_match_peft(zoo, name):
    from sage_ft_tui.engine.hardware.estimate import TrainSetup, estimate_memory
    from sage_ft_tui.engine.models.shape import model_shape

    shape = model_shape(str(zoo[name]))
    named = sorted(shape.linears())[:2]  # two of the names this family really has
    for r, targets in ((8, "all-linear"), (4, named)):
        trainable, base = _real(zoo[name], r, targets)
        got = shape.lora_params(r, targets)
        assert got == pytest.approx(trainable, rel=0.01), (name, targets, got, trainable)
        est = estimate_memory(
            str(zoo[name]), TrainSetup(lora_r=r, target_modules=targets, device="cpu", dtype="float32")
        )
        assert est.trainable_params == got
    assert shape.total_params == pytest.approx(base, rel=0.01), (name, shape.total_params, base)


def test_phi3_fused_projections_count_once(zoo):
    """Phi-3 adapts qkv_proj and gate_up_proj, one linear each with its real out features (not
    q/k/v and gate/up counted separately: 34,816 estimated vs 28,672 real in the issue)."""
    from sage_ft_tui.engine.errors import SageError
    from sage_ft_tui.engine.hardware.estimate import TrainSetup, estimate_memory
    from sage_ft_tui.engine.models.shape import model_shape

    shape = model_shape(str(zoo["phi-3.5-mini"]))
    lin = shape.linears()
    assert set(lin) == {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"}
    q, kv = shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim
    assert lin["qkv_proj"][:2] == (shape.hidden, q + 2 * kv) and lin["gate_up_proj"][1] == 2 * shape.intermediate
    with pytest.raises(SageError, match="match no linear layer") as info:
        estimate_memory(
            str(zoo["phi-3.5-mini"]), TrainSetup(target_modules=["q_proj", "v_proj"], device="cpu", dtype="float32")
        )
    assert "qkv_proj" in info.value.hint


def test_softcapped_eager_attention_keeps_its_scores(zoo, monkeypatch):
    """Where a softcapped model's attention runs eagerly (CPU, fp32 on a GPU) the estimate adds
    the scores autograd keeps — what engine.train.attention's eager path saves, measured here
    with saved_tensors_hooks; on a GPU in bf16 (a fused path) it adds nothing."""
    from sage_ft_tui.engine.hardware.estimate import TrainSetup, eager_scores_bytes, estimate_memory
    from sage_ft_tui.engine.models.shape import model_shape
    from sage_ft_tui.engine.train.attention import eager_scores_attention

    monkeypatch.delenv("SAGE_FT_ATTN", raising=False)
    gemma2, phi = model_shape(str(zoo["gemma-2-it"])), model_shape(str(zoo["phi-3.5-mini"]))
    assert gemma2.attn_softcap == 50.0 and phi.attn_softcap is None
    length = 96
    for dtype, torch_dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        kept = eager_scores_bytes(gemma2, "cpu", dtype, 1, length, True)
        q = torch.randn(1, gemma2.heads, length, 16, dtype=torch_dtype, requires_grad=True)
        k, v = (torch.randn(1, gemma2.kv_heads, length, 16, dtype=torch_dtype, requires_grad=True) for _ in "kv")
        saved: dict[int, int] = {}

        def pack(t, saved=saved):
            saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        module = torch.nn.Module()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            eager_scores_attention(module, q, k, v, None, softcap=50.0)
        inputs = 3 * q.numel() * q.element_size() + length * length  # q, k and v repeated to every head, the mask
        assert sum(saved.values()) - inputs == pytest.approx(kept, rel=0.05), dtype
    cpu = estimate_memory(str(zoo["gemma-2-it"]), TrainSetup(device="cpu", dtype="float32", max_length=length))
    assert any("softcapping" in n for n in cpu.notes)
    gpu = estimate_memory(str(zoo["gemma-2-it"]), TrainSetup(device="cuda", dtype="bfloat16", max_length=length))
    assert eager_scores_bytes(gemma2, "cuda", "bfloat16", 1, length, True) == 0 and gpu.notes == []
    assert eager_scores_bytes(phi, "cpu", "float32", 1, length, True) == 0
