"""GGUF export for real on the tiny model: llama.cpp's converter writes it, llama.cpp's
quantizer makes the K-quant, llama.cpp itself loads the file and must tokenize exactly like
the model's tokenizer; a file that fails that is never written and an earlier one survives."""

from __future__ import annotations

import json
import shutil

import pytest

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.export import gotemplate, llama
from sage_ft_tui.engine.export.run import export_gguf

pytestmark = pytest.mark.skipif(not llama.available(), reason="llama.cpp's binding (the gguf extra) is not installed")


@pytest.fixture(scope="module")
def exported(tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("gguf")
    entries = {
        q: export_gguf(tiny_model, out / f"tiny-{q}.gguf", q, modelfile_path=out / "Modelfile")
        for q in ("f16", "q4_k_m")
    }
    return out, entries


def test_f16_checked_by_llama_cpp(exported, tiny_model):
    import gguf

    out, entries = exported
    e = entries["f16"]
    assert (out / "tiny-f16.gguf").stat().st_size == e["bytes"] > 0
    assert e["arch"] == "llama" and e["tokenizer_model"] == "gpt2" and e["tokenizer_pre"] == "gpt-2"
    assert (
        e["tokenizer_pre_source"] == "derived from tokenizer.json's pre_tokenizer"
    )  # a vocabulary llama.cpp does not list
    chk = e["check"]
    assert chk["by"] == "llama.cpp" and chk["tokenization"]["identical"] and chk["tokenization"]["texts"] >= 12
    assert chk["logits"]["passed"] and chk["logits"]["greedy_agreement"] >= 0.95, chk["logits"]
    r = gguf.GGUFReader(str(out / "tiny-f16.gguf"))
    tmpl = r.fields["tokenizer.chat_template"]
    assert bytes(tmpl.parts[tmpl.data[0]]).decode() == (tiny_model / "chat_template.jinja").read_text()
    assert not list(out.glob(".*.tmp"))  # no temporary file left behind


def test_k_quant_made_by_llama_cpp_quantizer(exported):
    out, entries = exported
    e = entries["q4_k_m"]
    assert e["quantizer"] == "llama.cpp llama_model_quantize" and e["quantized_from"] == "f16"
    # tiny-demo's rows (64) are shorter than a K-quant block (256): llama.cpp falls back per tensor
    assert set(e["tensor_types"]) - {"F32", "F16"}, e["tensor_types"]
    assert e["check"]["tokenization"]["identical"] and e["check"]["logits"]["max_rel_diff"] < 1
    assert e["check"]["logits"]["tolerance"] is None  # K-quants are reported, not judged
    mid = e["check_16bit"]  # ... and the f16 file they are made from is judged first
    assert mid["tokenization"]["identical"] and mid["logits"]["passed"] and mid["logits"]["tolerance"] == 2e-2
    assert e["bytes"] < entries["f16"]["bytes"]


def test_modelfile_follows_the_last_export(exported, tiny_model):
    from sage_ft_tui.engine.data.template import ChatTokenizer

    out, _ = exported
    text = (out / "Modelfile").read_text()
    assert text.startswith("FROM ./tiny-q4_k_m.gguf\n") and 'PARAMETER stop "<|im_end|>"' in text
    tmpl = text.split('TEMPLATE """', 1)[1].split('"""', 1)[0]
    chat = ChatTokenizer(tiny_model)
    conv = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Bye"},
    ]
    assert gotemplate.render(tmpl, gotemplate.ollama_values(conv)) == chat.render(conv, add_generation_prompt=True)


def test_failed_tokenization_check_writes_nothing(tiny_model, tmp_path):
    """An added token that strips the whitespace after it (rstrip) is something GGUF cannot
    say: llama.cpp tokenizes "<|im_end|>\\n" differently, so nothing is written."""
    model = tmp_path / "m"
    shutil.copytree(tiny_model, model)
    tj = json.loads((model / "tokenizer.json").read_text())
    for t in tj["added_tokens"]:
        if t["content"] == "<|im_end|>":
            t["rstrip"] = True
    (model / "tokenizer.json").write_text(json.dumps(tj))
    out = tmp_path / "export"
    out.mkdir()
    (out / "m-f16.gguf").write_bytes(b"an earlier export")
    with pytest.raises(SageError) as err:
        export_gguf(model, out / "m-f16.gguf", "f16", modelfile_path=out / "Modelfile")
    line = err.value.oneline()
    assert "llama.cpp tokenizes the exported file differently" in line and "nothing was written" in line
    assert (out / "m-f16.gguf").read_bytes() == b"an earlier export"
    assert sorted(p.name for p in out.iterdir()) == ["m-f16.gguf"]


def test_without_the_binding(tiny_model, tmp_path, monkeypatch):
    """A machine without the gguf extra: K-quants refused in one line naming it; f16 still
    exported, said to be unchecked by llama.cpp."""
    from sage_ft_tui.engine.export.report import summary

    monkeypatch.setattr(llama, "available", lambda: False)
    with pytest.raises(SageError) as err:
        export_gguf(tiny_model, tmp_path / "t-q4_k_m.gguf", "q4_k_m")
    assert "needs llama.cpp's quantizer, from the `gguf` extra" in err.value.oneline()
    assert "pip install 'sage-ft-tui[gguf]'" in err.value.oneline()
    assert not (tmp_path / "t-q4_k_m.gguf").exists()
    e = export_gguf(tiny_model, tmp_path / "t-q8_0.gguf", "q8_0")
    assert e["check"]["by"] is None and "not checked by llama.cpp" in e["check"]["note"]
    assert any("not checked by llama.cpp" in ln and "sage-ft-tui[gguf]" in ln for ln in summary(e))


def test_disk_full_while_writing_is_one_line_and_keeps_the_old_file(tiny_model, tmp_path):
    """The export process under a file-size limit (a write past it fails with EFBIG, the way
    a full disk fails with ENOSPC): one disk line, the earlier file intact, no temporary left."""
    import os
    import resource
    import signal
    import subprocess
    import sys

    out = tmp_path / "export"
    out.mkdir()
    (out / "t-f16.gguf").write_bytes(b"an earlier export")
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from sage_ft_tui.engine.errors import SageError\n"
        "from sage_ft_tui.engine.export.run import export_gguf\n"
        "try:\n"
        f"    export_gguf(Path({str(tiny_model)!r}), Path({str(out / 't-f16.gguf')!r}), 'f16')\n"
        "except SageError as e:\n"
        "    print(e.oneline()); sys.exit(2)\n"
    )

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, preexec_fn=limit, env=os.environ
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stdout + r.stderr[-2000:]
    assert r.stdout.strip().startswith("error: ") and "disk filled up writing t-f16.gguf" in r.stdout, r.stdout
    assert (out / "t-f16.gguf").read_bytes() == b"an earlier export"
    assert sorted(p.name for p in out.iterdir()) == ["t-f16.gguf"]


def test_a_preference_run_exports(tiny_model, sage_home):
    """A DPO run (no merged/ yet): export merges it first, then writes the checked GGUF."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    from sage_ft_tui.engine.runs.layout import RunLayout
    from sage_ft_tui.engine.runs.state import write_status
    from tests.adapters import make_adapter

    def cli(*args):
        cmd = [sys.executable, "-m", "sage_ft_tui", *map(str, args)]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)

    data = Path(__file__).resolve().parents[1] / "fixtures" / "preference" / "dpo_sharegpt.json"
    p = cli("start", "--task", "preference", "--data", data, "--model", "tiny-demo", "--name", "dpo", "--no-tui")
    assert p.returncode == 0, p.stderr[-2000:]
    run = sage_home / "dpo"
    make_adapter(tiny_model, run / "adapter", seed=3)
    write_status(run, state="completed", step=3, total_steps=3, ended=time.time())
    r = cli("export", "dpo", "--quant", "f16", "--json")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert '"identical": true' in r.stdout and RunLayout(run).export_gguf("f16").is_file()


def test_offline_and_unsupported_architecture_is_one_line(tiny_model, tmp_path, monkeypatch):
    """No connection is opened while converting and checking; an architecture llama.cpp's
    converter does not know is one line, nothing written."""
    import socket

    tried = []

    def no_network(self, address):
        tried.append(address)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    e = export_gguf(tiny_model, tmp_path / "t-f16.gguf", "f16")
    assert e["check"]["tokenization"]["identical"] and tried == []
    odd = tmp_path / "odd"
    shutil.copytree(tiny_model, odd)
    cfg = json.loads((odd / "config.json").read_text())
    (odd / "config.json").write_text(json.dumps({**cfg, "architectures": ["NoSuchForCausalLM"]}))
    with pytest.raises(SageError) as err:
        export_gguf(odd, tmp_path / "odd-f16.gguf", "f16")
    assert "llama.cpp's converter does not support NoSuchForCausalLM" in err.value.oneline()
    assert "--format hf" in err.value.oneline() and not (tmp_path / "odd-f16.gguf").exists()
    assert not list(tmp_path.glob(".*.tmp"))
