"""The model zoo (tests/zoo) is what it claims: every folder loads offline through the ordinary
transformers path, with the family's tokenizer class, special tokens, template and stop ids, and
its model runs; the facts its spec states (end of turn, system role, reasoning) hold for its template."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from tests.zoo.families import FAMILIES, Family

NAMES = list(FAMILIES)
SYSTEM = "Answer in one short line."
CHAT = [
    {"role": "user", "content": "Hello there, how are you?"},
    {"role": "assistant", "content": "Fine, thanks."},
    {"role": "user", "content": "What is 2+2?"},
]


@functools.cache
def _tok(path: Path):
    """Loaded once per folder: the tests only read the tokenizer."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _eos_ids(path: Path) -> list[int]:
    eos = _json(path / "generation_config.json")["eos_token_id"]
    return eos if isinstance(eos, list) else [eos]


def _render(tok, messages, **kw) -> str:
    return tok.apply_chat_template(messages, tokenize=False, **kw)


@pytest.mark.parametrize("name", NAMES)
def test_tokenizer_loads_offline_with_the_family_class_and_special_tokens(zoo, name):
    fam: Family = FAMILIES[name]
    path = zoo[name]
    assert _json(path / "tokenizer_config.json")["tokenizer_class"] == fam.tokenizer_class
    tok = _tok(path)
    assert tok.is_fast
    assert (tok.bos_token, tok.eos_token, tok.pad_token, tok.unk_token) == (fam.bos, fam.eos, fam.pad, fam.unk)
    for s in fam.special_strings:
        ids = tok(s, add_special_tokens=False)["input_ids"]
        assert ids == [tok.convert_tokens_to_ids(s)], f"{s} is not one token"
        assert s in tok.all_special_tokens
    # What llama.cpp's converter reads: the SentencePiece model, or a BPE vocabulary with merges.
    if fam.tokenizer_kind == "spm":
        assert (path / "tokenizer.model").is_file() and (path / "tokenizer.json").is_file()
    else:
        model = _json(path / "tokenizer.json")["model"]
        assert model["type"] == "BPE" and model["vocab"] and model["merges"]


@pytest.mark.parametrize("name", NAMES)
def test_end_of_turn_is_one_special_id_among_the_generation_stop_ids(zoo, name):
    fam = FAMILIES[name]
    tok = _tok(zoo[name])
    eot = tok.convert_tokens_to_ids(fam.end_of_turn)
    assert tok(fam.end_of_turn, add_special_tokens=False)["input_ids"] == [eot]
    assert eot in _eos_ids(zoo[name])
    assert [tok.convert_tokens_to_ids(t) for t in fam.gen_eos] == _eos_ids(zoo[name])
    # The template writes it right after an answer in history.
    rendered = _render(tok, CHAT, add_generation_prompt=True)
    answer_then_eot = rendered.split("Fine, thanks.", 1)[1]
    assert answer_then_eot.startswith(fam.end_of_turn), answer_then_eot[:40]


@pytest.mark.parametrize("name", NAMES)
def test_template_renders_three_turns_and_places_the_system_message_as_the_family_does(zoo, name):
    from jinja2.exceptions import TemplateError

    fam = FAMILIES[name]
    tok = _tok(zoo[name])
    plain = _render(tok, CHAT, add_generation_prompt=True)
    assert all(m["content"] in plain for m in CHAT)
    with_system = [{"role": "system", "content": SYSTEM}, *CHAT]
    if fam.system == "none":
        with pytest.raises(TemplateError):
            _render(tok, with_system, add_generation_prompt=True)
        return
    text = _render(tok, with_system, add_generation_prompt=True)
    first, last = text.index(CHAT[0]["content"]), text.index(CHAT[2]["content"])
    where = text.index(SYSTEM)
    if fam.system == "last-user":
        assert first < where < last and text.count(SYSTEM) == 1
        assert SYSTEM not in _render(tok, [*with_system, {"role": "assistant", "content": "4"}, CHAT[0]])[:first]
    else:  # native, or folded into the first user turn: before the first user text
        assert where < first
    if fam.system == "folded":
        assert text[where - 20 : where].rstrip().endswith("user"), text[:where]


@pytest.mark.parametrize("name", NAMES)
def test_reasoning_in_history_is_dropped_where_the_spec_says(zoo, name):
    fam = FAMILIES[name]
    tok = _tok(zoo[name])
    chat = [CHAT[0], {"role": "assistant", "content": "<think>\nweighing it up\n</think>\n\nFine."}, CHAT[2]]
    text = _render(tok, chat, add_generation_prompt=True)
    assert ("weighing it up" not in text) == fam.drops_reasoning


@pytest.mark.parametrize("name", NAMES)
def test_model_loads_offline_with_the_family_architecture_and_runs(zoo, name):
    import torch
    from transformers import AutoModelForCausalLM

    fam = FAMILIES[name]
    path = zoo[name]
    cfg = _json(path / "config.json")
    assert cfg["architectures"] == [fam.architecture] and cfg["model_type"] == fam.model_type
    assert cfg["num_hidden_layers"] == fam.config.get("num_hidden_layers", 2) and cfg["hidden_size"] == 256
    assert cfg.get("tie_word_embeddings", True) == fam.config.get("tie_word_embeddings", True)
    tok = _tok(path)
    assert len(tok) <= cfg["vocab_size"]
    kw = {"attn_implementation": fam.attn_implementation} if fam.attn_implementation else {}
    model = AutoModelForCausalLM.from_pretrained(str(path), **kw)
    assert type(model).__name__ == fam.architecture
    messages = CHAT if fam.system == "none" else [{"role": "system", "content": SYSTEM}, *CHAT]
    ids = tok(_render(tok, messages, add_generation_prompt=True), add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits
    assert logits.shape == (1, len(ids), cfg["vocab_size"]) and torch.isfinite(logits).all()


@pytest.mark.parametrize("name", ["smollm2-instruct", "gemma-2-it"])
def test_a_fresh_build_writes_the_same_bytes_as_the_cached_zoo(zoo, tmp_path, name):
    from tests.zoo.build import build_family

    fresh = build_family(name, tmp_path / name)
    cached = zoo[name]
    names = sorted(p.name for p in cached.iterdir())
    assert names == sorted(p.name for p in fresh.iterdir())
    for n in names:
        assert (fresh / n).read_bytes() == (cached / n).read_bytes(), n
