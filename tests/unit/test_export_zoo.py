"""GGUF export over the model zoo: for every family, llama.cpp's converter writes f16, q8_0
and q4_k_m (llama.cpp's quantizer), llama.cpp loads each file and tokenizes chat-formatted
and edge-case text exactly like the family's tokenizer, its logits match the model's, and
the Ollama Modelfile renders a conversation with a system message like the family's own
chat template. Each folder is exported once per session (the fixture), not per test."""

from __future__ import annotations

import pytest

from sage_ft_tui.engine.export import gotemplate, llama
from tests.zoo.families import FAMILIES

pytestmark = [
    pytest.mark.train,
    pytest.mark.skipif(not llama.available(), reason="llama.cpp's binding (the gguf extra) is not installed"),
]
QUANTS = ("f16", "q8_0", "q4_k_m")

CONVERSATION = [
    {"role": "system", "content": "You answer in one short sentence."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris is the capital of France."},
    {"role": "user", "content": "And of Italy?"},
    {"role": "assistant", "content": "Rome."},
    {"role": "user", "content": "Thanks! 1, 22, 333."},
]


@pytest.fixture(scope="session")
def zoo_ggufs(zoo, tmp_path_factory):
    """{family: {quant: export entry or the SageError}}, each exported once."""
    from sage_ft_tui.engine.errors import SageError
    from sage_ft_tui.engine.export.run import export_gguf

    out = tmp_path_factory.mktemp("zoo-gguf")
    done: dict = {}
    for name, folder in zoo.items():
        (out / name).mkdir()
        done[name] = {}
        for q in QUANTS:
            try:
                done[name][q] = export_gguf(
                    folder, out / name / f"{name}-{q}.gguf", q, modelfile_path=out / name / "Modelfile", name=name
                )
            except SageError as e:
                done[name][q] = e
    return out, done


# No zoo family is refused by the logits check (test_gemma3_layer_pattern shows one that is).
LOGITS_REFUSED: set[str] = set()


@pytest.mark.parametrize("name", list(FAMILIES))
def test_family_gguf_checked_by_llama_cpp(name, zoo, zoo_ggufs):
    """Each export passes llama.cpp's check, or is refused in one line that names the cause
    (a tokenizer property GGUF cannot carry), with nothing written."""
    from sage_ft_tui.engine.errors import SageError
    from sage_ft_tui.engine.export.check import unrepresentable

    out, done = zoo_ggufs
    fam = FAMILIES[name]
    causes = unrepresentable(zoo[name])
    for q in QUANTS:
        e = done[name][q]
        if isinstance(e, SageError):
            line = e.oneline()
            assert not (out / name / f"{name}-{q}.gguf").exists() and not list((out / name).glob(".*.tmp"))
            if "tokenizes the exported file differently" in line:
                assert causes and all(c in line for c in causes), line
            else:
                assert name in LOGITS_REFUSED and "differ from the merged model's" in line, line
            continue
        assert e["arch"] == fam.gguf_arch, (q, e["arch"])
        chk = e["check"]
        assert chk["by"] == "llama.cpp" and chk["tokenization"]["identical"], (q, chk["tokenization"])
        lg = chk["logits"]
        assert lg["passed"], (q, lg)
        if q == "f16":
            assert lg["greedy_agreement"] >= 0.9, lg
    if not causes and name not in LOGITS_REFUSED:
        assert all(isinstance(done[name][q], dict) for q in QUANTS), done[name]
        assert done[name]["q4_k_m"]["bytes"] < done[name]["f16"]["bytes"]


def test_gemma3_layer_pattern(zoo, tmp_path):
    """A Gemma-3 folder whose layer pattern llama.cpp cannot represent (it assumes the
    released 5 local : 1 global) is refused by the logits check, with nothing written."""
    import json
    import shutil

    from sage_ft_tui.engine.errors import SageError
    from sage_ft_tui.engine.export.run import export_gguf

    g = tmp_path / "gemma-3"
    shutil.copytree(zoo["gemma-3-it"], g)
    cfg = json.loads((g / "config.json").read_text())
    n = cfg["num_hidden_layers"]
    cfg.update(layer_types=["sliding_attention", "full_attention"] * (n // 2), sliding_window_pattern=2)
    (g / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(SageError) as e:
        export_gguf(g, tmp_path / "g-f16.gguf", "f16")
    assert "differ from the merged model's" in e.value.oneline()
    assert not (tmp_path / "g-f16.gguf").exists()


@pytest.mark.parametrize("name", list(FAMILIES))
def test_family_modelfile_renders_like_its_chat_template(name, zoo, zoo_ggufs):
    import json
    from datetime import datetime

    from sage_ft_tui.engine.data.template import ChatTokenizer
    from sage_ft_tui.engine.export.modelfile import derive, modelfile

    out, done = zoo_ggufs
    fam = FAMILIES[name]
    chat = ChatTokenizer(zoo[name])
    exported = [q for q in QUANTS if isinstance(done[name][q], dict)]
    if exported:  # the Modelfile written beside the last GGUF
        e = done[name][exported[-1]]
        add_bos = e["check"]["add_bos"]
        text = (out / name / "Modelfile").read_text()
        assert text.startswith(f"FROM ./{name}-{exported[-1]}.gguf\n")
    else:  # no GGUF to go with: the same derivation, with the tokenizer's own BOS flag
        add_bos = bool(json.loads((zoo[name] / "tokenizer_config.json").read_text()).get("add_bos_token"))
        derived = derive(chat, add_bos)
        text = modelfile(f"{name}.gguf", derived)
    stops = [ln.split(" ", 2)[2].strip('"') for ln in text.splitlines() if ln.startswith("PARAMETER stop ")]
    assert stops and stops[0] == fam.end_of_turn, stops
    tmpl = text.split('TEMPLATE """', 1)[1].split('"""', 1)[0]
    today = datetime.now().strftime("%d %b %Y")
    assert today not in tmpl  # no frozen date (a template's own constant date, Llama 3.1's, stays)
    got = gotemplate.render(tmpl, gotemplate.ollama_values(CONVERSATION))
    want = chat.render(CONVERSATION, add_generation_prompt=True)
    prompt = ((chat.bos_token or "") if add_bos else "") + got  # what Ollama tokenizes: llama.cpp adds the BOS
    if today in want:  # the line the template takes from the clock is left out, not frozen
        want = "\n".join(ln for ln in want.split("\n") if today not in ln)
    assert prompt == want
    if chat.bos_token and want.startswith(chat.bos_token):  # exactly one BOS: llama.cpp's, or the template's
        assert not prompt.startswith(chat.bos_token * 2) and got.startswith(chat.bos_token) != add_bos
    assert "You answer in one short sentence." in got  # the system prompt reaches the model


@pytest.mark.parametrize("name", [n for n in FAMILIES if n.startswith(("llama-3", "mistral-nemo"))])
def test_what_the_hand_written_writer_missed(name, zoo, zoo_ggufs):
    """Llama 3's rope scaling becomes llama.cpp's rope_freqs tensor; a head size that is not
    hidden/heads (Nemo) is written as attention.key_length."""
    import json

    import gguf

    out, done = zoo_ggufs
    cfg = json.loads((zoo[name] / "config.json").read_text())
    r = gguf.GGUFReader(str(out / name / f"{name}-f16.gguf"))
    rope = cfg.get("rope_scaling") or cfg.get("rope_parameters") or {}
    if rope.get("rope_type") == "llama3":
        assert "rope_freqs.weight" in [t.name for t in r.tensors]
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    f = r.fields.get(f"{done[name]['f16']['arch']}.attention.key_length")
    if head_dim != cfg["hidden_size"] // cfg["num_attention_heads"]:
        assert f is not None and int(f.parts[f.data[0]][0]) == head_dim
