"""Real failing loads (no weights, a cut safetensors file, a config.json of another shape, a
damaged config.json, an attention the model refuses): each is one SageError whose message
keeps whole sentences (never a cut URL) and whose hint fixes that cause — through the
trainer's loading, the worker's classification and the start-time module check."""

from __future__ import annotations

import json
import shutil

import pytest

torch = pytest.importorskip("torch")

from sage_ft_tui.engine.errors import SageError, clip  # noqa: E402

GEMMA2_SDPA = "does not support an attention implementation through torch.nn.functional.scaled_dot_product_attention"


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from transformers import Gemma2Config, Gemma2ForCausalLM

    root = tmp_path_factory.mktemp("loads")
    good = root / "good"
    cfg = Gemma2Config(
        vocab_size=128,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
    )
    Gemma2ForCausalLM(cfg).save_pretrained(str(good))
    out = {"good": good}
    for name in ("noweights", "truncated", "mismatch", "badjson"):
        d = out[name] = root / name
        d.mkdir()
        shutil.copy(good / "config.json", d / "config.json")
    blob = (good / "model.safetensors").read_bytes()
    (out["truncated"] / "model.safetensors").write_bytes(blob[:3000])
    (out["mismatch"] / "model.safetensors").write_bytes(blob)
    conf = json.loads((good / "config.json").read_text())
    (out["mismatch"] / "config.json").write_text(json.dumps({**conf, "hidden_size": 48}))
    (out["badjson"] / "config.json").write_text('{"model_type": "gemma2", ')
    return out


def _load(d, attn="eager"):
    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.train.model import load_model

    cfg = RunConfig.model_validate({"model": {"name": str(d), "attn_implementation": attn}})
    att: dict = {}
    return load_model(cfg, d, att), att


CASES = {
    "noweights": ("has no weights", "model.safetensors", "model"),
    "truncated": ("truncated or corrupt", "re-download", "model"),
    "mismatch": ("do not have the shapes its config.json describes", "restore the model's own config.json", "model"),
    "badjson": ("config.json", "re-download", "model"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_trainer_load_failures_name_their_cause(folders, case):
    words, hint, kind = CASES[case]
    with pytest.raises(SageError) as info:
        _load(folders[case])
    e = info.value
    assert words in e.message and hint in e.hint and e.kind == kind, e.oneline()
    assert "\n" not in e.oneline() and "Traceback" not in e.oneline()
    if case != "noweights":  # only a folder without weights is told to check for weights
        assert "safetensors/bin" not in e.hint and "holds weights" not in e.hint


def _raw(d, attn="eager") -> BaseException:
    from transformers import AutoModelForCausalLM

    try:
        AutoModelForCausalLM.from_pretrained(str(d), attn_implementation=attn)
    except Exception as e:  # noqa: BLE001 - the loader's own exception is the input
        return e
    raise AssertionError("the load did not fail")


def test_worker_classifies_raw_loader_errors(folders):
    """The worker sees the loader's exceptions as they are raised (e.g. from a trainer that did
    not wrap them): the same causes, the same hints; Gemma-2's refusal of sdpa is an attention
    problem, said in its whole first sentence, not a cut URL."""
    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.runs.create import create_run
    from sage_ft_tui.engine.train import worker

    run = create_run(
        RunConfig.from_dict(
            {"name": "w", "task": "qa", "model": {"name": str(folders["good"])}, "data": {"paths": ["x"]}}
        ),
        prepare=False,
    )
    refused = _raw(folders["good"], "sdpa")
    assert "https://github.com" in str(refused)  # what used to be cut mid-URL
    err = worker.classify(refused, run)
    assert err.kind == "config" and GEMMA2_SDPA in err.message and err.message.endswith("yet.")
    assert "attn_implementation" in err.hint and "weights" not in err.hint
    assert "truncated or corrupt" in worker.classify(_raw(folders["truncated"]), run).message
    assert "do not have the shapes" in worker.classify(_raw(folders["mismatch"]), run).message
    other = worker.classify(ValueError("x " * 400), run)  # unknown: clipped at a word, with an ellipsis
    assert other.kind == "internal" and other.message.endswith("x…") and len(other.message) < 320


def test_start_time_module_check_says_config_is_damaged(folders):
    """`start`'s LoRA-target check builds the model from config.json in a child process: a
    damaged config.json is said so, with its hint (not 'cannot build the model: <cut line>')."""
    from sage_ft_tui.engine.models.modules import check_target_modules

    with pytest.raises(SageError) as info:
        check_target_modules(folders["badjson"], ["q_proj"], model_name="bad")
    assert "config.json" in info.value.message and "damaged" in info.value.message
    assert "re-download" in info.value.hint


def test_flash_attention_without_flash_attn_falls_back(folders, capsys):
    """flash_attention_2 asked for on a machine without flash-attn: loaded in the auto path
    for this model, with the note; the loader's reason is a whole sentence."""
    model, att = _load(folders["good"], "flash_attention_2")
    assert att["attention"] == model.config._attn_implementation != "flash_attention_2"
    assert "cannot use flash_attention_2 (" in att["attention_note"]
    assert "note: attention" in capsys.readouterr().out


@pytest.mark.parametrize(
    "text,limit,want",
    [
        ("Short message.", 240, "Short message."),
        ("First line.\nSecond line.", 240, "First line."),
        (
            "Model X does not support it yet. Please request the support: https://github.com/huggingface/"
            "transformers/issues/28005. If you believe this error is a bug, open an issue.",
            60,
            "Model X does not support it yet.",
        ),
        ("word " * 100, 50, ("word " * 9).strip() + "…"),
        ("see https://example.com/a/very/long/path/that/would/be/cut/in/the/middle/of/it ok", 40, "see…"),
    ],
)
def test_clip_keeps_sentences_and_words(text, limit, want):
    got = clip(text, limit)
    assert got == want and len(got) <= limit
