"""The family of every zoo model and what its template does, in the one line the Model step
and `doctor --model` show: read from config.json and the template (describe()), never the
name; light (no torch/transformers in the process)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.zoo.families import FAMILIES

NAMES = list(FAMILIES)
SYSTEM_WORDS = {"native": "system prompt native", "folded": "folded into the first user turn"}
SYSTEM_WORDS.update({"none": "folded into the first user turn", "last-user": "placed in the last user turn"})


@pytest.mark.parametrize("name", NAMES)
def test_summary_names_family_end_of_turn_and_system(zoo_family, name):
    from sage_ft_tui.engine.models.family import family_of
    from sage_ft_tui.engine.models.family_facts import family_summary

    z = zoo_family(name)
    fam = family_of(z.path)
    assert fam is not None and fam.model_type == z.family.model_type and fam.architecture == z.family.architecture
    line = family_summary(z.path)
    assert line.startswith(f"{fam.name} ({z.family.model_type}) · ")
    assert f"end of turn {z.family.end_of_turn}" in line
    assert SYSTEM_WORDS[z.family.system] in line
    assert "\n" not in line


def test_named_from_config_not_folder(tmp_path, zoo):
    """A Gemma-2 folder renamed 'llama-ish' is still Gemma 2; a folder without a tokenizer says so."""
    from sage_ft_tui.engine.models.family_facts import family_summary

    d = tmp_path / "llama-ish"
    d.mkdir()
    (d / "config.json").write_text((zoo["gemma-2-it"] / "config.json").read_text())
    assert family_summary(d) == "Gemma 2 (gemma2) · chat template unknown (no tokenizer.json)"
    (d / "config.json").write_text(json.dumps({"architectures": ["Olmo2ForCausalLM"]}))
    assert family_summary(d).startswith("OLMo 2 (olmo2) · ")  # from architectures when model_type is absent


def test_family_is_light(zoo):
    code = (
        "import sys; from pathlib import Path; from sage_ft_tui.engine.models.family_facts import family_summary; "
        f"print(family_summary(Path({str(zoo['phi-3.5-mini'])!r}))); "
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["Phi 3 (phi3) · end of turn <|end|>; system prompt native", "[]"]


def test_doctor_model_says_family_template_and_attention(zoo):
    """`doctor --model` (human and --json): family, end of turn, stop tokens, the system fold,
    and the softcapping attention path for Gemma-2; a model not here is a problem line."""
    from tests.e2e.conftest import cli

    r = cli("doctor", "--model", str(zoo["gemma-2-it"]))
    assert r.returncode == 0, r.stderr
    out = " ".join(r.stdout.split())  # rich wraps long lines
    assert "family Gemma 2 (gemma2)" in out and "end of turn <end_of_turn>" in out
    assert "folded into the first user turn (by sage-ft-tui: the template has no system role)" in out
    assert "sage_varlen_eager" in out and "softcapping" in out
    rep = json.loads(cli("doctor", "--json", "--model", str(zoo["mistral-nemo"])).stdout)["model"]
    assert rep["family"] == "Mistral (mistral)" and rep["end_of_turn"] == "</s>"
    assert rep["system"] == "placed in the last user turn" and "</s>" in rep["stop_tokens"]
    missing = json.loads(cli("doctor", "--json", "--model", "nobody/nothing-here").stdout)
    assert any("nobody/nothing-here is not on this machine" in p for p in missing["problems"])
