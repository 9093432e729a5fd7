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
    pytest.mark.slow,
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


@pytest.mark.parametrize("name", list(FAMILIES))
def test_family_gguf_checked_by_llama_cpp(name, zoo_ggufs):
    _, done = zoo_ggufs
    fam = FAMILIES[name]
    for q in QUANTS:
        e = done[name][q]
        assert isinstance(e, dict), f"{name} {q}: {e}"
        assert e["arch"] == fam.gguf_arch, (q, e["arch"])
        chk = e["check"]
        assert chk["by"] == "llama.cpp" and chk["tokenization"]["identical"], (q, chk["tokenization"])
        lg = chk["logits"]
        assert lg["passed"], (q, lg)
        if q == "f16":
            assert lg["greedy_agreement"] >= 0.9, lg
    assert done[name]["q4_k_m"]["bytes"] < done[name]["f16"]["bytes"]


@pytest.mark.parametrize("name", list(FAMILIES))
def test_family_modelfile_renders_like_its_chat_template(name, zoo, zoo_ggufs):
    from sage_ft_tui.engine.data.template import ChatTokenizer

    out, done = zoo_ggufs
    fam = FAMILIES[name]
    e = done[name]["q4_k_m"]
    chat = ChatTokenizer(zoo[name])
    text = (out / name / "Modelfile").read_text()
    assert text.startswith(f"FROM ./{name}-q4_k_m.gguf\n")
    stops = [ln.split(" ", 2)[2].strip('"') for ln in text.splitlines() if ln.startswith("PARAMETER stop ")]
    assert stops and stops[0] == fam.end_of_turn, stops
    tmpl = text.split('TEMPLATE """', 1)[1].split('"""', 1)[0]
    assert "Today Date" not in tmpl  # no frozen date
    add_bos = e["check"]["add_bos"]
    got = gotemplate.render(tmpl, gotemplate.ollama_values(CONVERSATION))
    want = chat.render(CONVERSATION, add_generation_prompt=True)
    prompt = ((chat.bos_token or "") if add_bos else "") + got  # what Ollama tokenizes: llama.cpp adds the BOS
    if "Today Date" in want:  # the clock line the template writes is left out, not frozen
        want = "\n".join(ln for ln in want.split("\n") if not ln.startswith("Today Date"))
    assert prompt == want
    if chat.bos_token and want.startswith(chat.bos_token):
        assert prompt.count(chat.bos_token) == 1  # exactly one BOS
    assert "You answer in one short sentence." in got  # the system prompt reaches the model
    assert e["system_prompt"] != "dropped"
