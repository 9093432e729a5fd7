"""The GGUF export's pieces that need no model: the pre-tokenizer derivation, the Go
template evaluator, the Modelfile derivation on the tiny model's template, --max-shard-size."""

from __future__ import annotations

import json
import shutil

import pytest

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.export import gotemplate, pretok


def _tokenizer_json(tmp_path, pre, *, ignore_merges=False, normalizer=None):
    tj = {
        "model": {"type": "BPE", "ignore_merges": ignore_merges, "vocab": {}, "merges": []},
        "decoder": {"type": "ByteLevel"},
        "normalizer": normalizer,
        "pre_tokenizer": pre,
    }
    p = tmp_path / "tokenizer.json"
    p.write_text(json.dumps(tj))
    return p


def _split(regex):
    return {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False}


BYTES = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}


@pytest.mark.parametrize(
    "pre, ignore, want",
    [
        ({"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}, False, "gpt-2"),
        ({"type": "Sequence", "pretokenizers": [_split(pretok.LLAMA3), BYTES]}, True, "llama3"),
        ({"type": "Sequence", "pretokenizers": [_split(pretok.LLAMA3), BYTES]}, False, "smaug-bpe"),
        ({"type": "Sequence", "pretokenizers": [_split(pretok.QWEN2), BYTES]}, False, "qwen2"),
        ({"type": "Sequence", "pretokenizers": [_split(pretok.TEKKEN), BYTES]}, True, "tekken"),
        ({"type": "Sequence", "pretokenizers": [_split(pretok.GPT4O), BYTES]}, False, "gpt-4o"),
        (
            {
                "type": "Sequence",
                "pretokenizers": [
                    {"type": "Digits", "individual_digits": True},
                    {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True},
                ],
            },
            False,
            "smollm",
        ),
        # llama.cpp's hand-written spelling of the case-insensitive contractions reads the same
        (
            {
                "type": "Sequence",
                "pretokenizers": [_split(pretok.QWEN2.replace(pretok._CONTRACTIONS, pretok._SPELLED)), BYTES],
            },
            False,
            "qwen2",
        ),
    ],
)
def test_pre_tokenizer_derived_from_tokenizer_json(tmp_path, pre, ignore, want):
    name, why = pretok.derive(_tokenizer_json(tmp_path, pre, ignore_merges=ignore))
    assert name == want, why


@pytest.mark.parametrize(
    "pre, normalizer, why",
    [
        ({"type": "Sequence", "pretokenizers": [_split(r"\w+|\d"), BYTES]}, None, "no llama.cpp pre-tokenizer splits"),
        ({"type": "ByteLevel", "add_prefix_space": True, "use_regex": True}, None, "no llama.cpp equivalent"),
        ({"type": "Whitespace"}, None, "no llama.cpp equivalent"),
        ({"type": "ByteLevel", "use_regex": True}, {"type": "NFKC"}, "normalizer (NFKC)"),
    ],
)
def test_pre_tokenizer_without_a_llama_cpp_twin_is_refused(tmp_path, pre, normalizer, why):
    name, reason = pretok.derive(_tokenizer_json(tmp_path, pre, normalizer=normalizer))
    assert name is None and why in reason


def test_go_template_subset():
    t = (
        "{{ if .System }}S={{ .System }};{{ end }}{{ range $i, $_ := .Messages }}{{ $last := eq (len (slice $.Messages $i)) 1 }}"
        '{{ if eq .Role "user" }}U{{ $i }}:{{ .Content }}{{ if $last }}<gen>{{ end }}'
        '{{ else if eq .Role "assistant" }}A:{{ .Content }}{{ if not $last }}|{{ end }}{{ else }}?{{ end }}{{ end }}'
        '{{ "{{" }}'
    )
    msgs = [
        {"role": "system", "content": "be"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "yo"},
    ]
    v = gotemplate.ollama_values(msgs + [{"role": "user", "content": "q"}, {"role": "user", "content": "r"}])
    assert v["System"] == "be" and v["Messages"][-1]["Content"] == "q\n\nr"  # Ollama merges consecutive turns
    assert gotemplate.render(t, v) == "S=be;?U1:hiA:yo|U3:q\n\nr<gen>{{"
    assert gotemplate.render(t, gotemplate.ollama_values(msgs[1:])) == "U0:hiA:yo{{"
    for bad in ("{{- .System }}", "{{ if .X }}", "{{ printf .X }}", "{{ end }}"):
        with pytest.raises(ValueError):
            gotemplate.render(bad, {"X": 1})


def test_modelfile_renders_like_the_chat_template(tiny_model):
    from sage_ft_tui.engine.data.template import ChatTokenizer
    from sage_ft_tui.engine.export.modelfile import PROBE_CONVERSATIONS, derive, mismatches, modelfile

    chat = ChatTokenizer(tiny_model)
    d = derive(chat, add_bos=False)
    assert d.template is not None and d.system == "own turn" and d.stop == ["<|im_end|>"], d.notes
    for conv in PROBE_CONVERSATIONS:
        assert gotemplate.render(d.template, gotemplate.ollama_values(conv)) == chat.render(
            conv, add_generation_prompt=True
        )
    assert mismatches(chat, d.template, False) == []
    text = modelfile("m-q8_0.gguf", d)
    assert text.startswith("FROM ./m-q8_0.gguf\n") and 'PARAMETER stop "<|im_end|>"' in text
    assert "{{ if $.System }}<|im_start|>system\n{{ $.System }}<|im_end|>\n" in text


def test_modelfile_date_line_left_out_not_frozen(tmp_path, tiny_model):
    """A template that writes today's date (Llama 3.2 style): the Modelfile has no date."""
    from datetime import datetime

    from sage_ft_tui.engine.data.template import ChatTokenizer
    from sage_ft_tui.engine.export.modelfile import derive

    d = tmp_path / "m"
    shutil.copytree(tiny_model, d)
    (d / "chat_template.jinja").write_text(
        "{{ bos_token }}<|im_start|>system\nToday Date: {{ strftime_now('%d %b %Y') }}\n\n"
        "{% if messages[0]['role'] == 'system' %}{{ messages[0]['content'] }}{% endif %}<|im_end|>\n"
        "{% for m in messages %}{% if m['role'] != 'system' %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    der = derive(ChatTokenizer(d), add_bos=False)
    today = datetime.now().strftime("%d %b %Y")
    assert der.template is not None and "Today Date" not in der.template and today not in der.template
    assert any("date" in n for n in der.notes)


def test_shard_size_parsed_or_one_line():
    from sage_ft_tui.engine.export.run import shard_bytes
    from sage_ft_tui.engine.fsutil import MiB

    assert shard_bytes("2GB") == 2 * 10**9 and shard_bytes("500MiB") == 500 * MiB and shard_bytes("1024") == 1024
    for bad in ("5BC", "", "GB", "-1GB", "0"):
        with pytest.raises(SageError) as e:
            shard_bytes(bad)
        assert "--max-shard-size" in e.value.oneline() and "e.g. --max-shard-size 2GB" in e.value.oneline()
