"""Template variants no zoo family has: the end of turn, the system fold and the per-answer
split come from rendering the template, so a family nobody built goes through the same code.
Each case is a tokenizer (tiny-demo's, plus the variant's special tokens) and a template."""

from __future__ import annotations

import json
import shutil

import pytest

from sage_ft_tui.engine.data.chat_facts import SYSTEM_FOLDED, SYSTEM_NATIVE
from sage_ft_tui.engine.data.template import ChatTokenizer

CONV = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Name a fruit."},
    {"role": "assistant", "content": "An apple."},
    {"role": "user", "content": "And a vegetable?"},
    {"role": "assistant", "content": "A carrot."},
]

# Zephyr-style: </s> ends every turn, the eos of the tokenizer
ZEPHYR = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}{{ eos_token }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
# A ChatML variant whose generation_config forgot <|im_end|> (stop = <|endoftext|> only)
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# A plain template that writes no end of turn at all, and drops system messages
PLAIN = (
    "{% for m in messages %}{% if m['role'] == 'user' %}User: {{ m['content'] }}\n"
    "{% elif m['role'] == 'assistant' %}Assistant: {{ m['content'] }}\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


def _folder(tmp_path, tiny_model, template: str, eos: str, gen_eos: list[str], extra: list[str] = ()):
    from tokenizers import AddedToken, Tokenizer

    d = tmp_path / "variant"
    shutil.copytree(tiny_model, d)
    tok = Tokenizer.from_file(str(d / "tokenizer.json"))
    tok.add_special_tokens([AddedToken(t, special=True) for t in (*extra, eos)])
    tok.save(str(d / "tokenizer.json"))
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    cfg.update(eos_token=eos)
    cfg.pop("chat_template", None)
    (d / "tokenizer_config.json").write_text(json.dumps(cfg))
    (d / "chat_template.jinja").write_text(template)
    (d / "generation_config.json").write_text(json.dumps({"eos_token_id": [tok.token_to_id(t) for t in gen_eos]}))
    return ChatTokenizer(d)


def _trained(t: ChatTokenizer, conv) -> list[str]:
    return [
        t.tok.decode([i for i, m in zip(e.input_ids, e.completion_mask) if m], skip_special_tokens=False)
        for e in t.encode_examples(conv)
    ]


def test_zephyr_eos_ends_each_turn(tmp_path, tiny_model):
    t = _folder(tmp_path, tiny_model, ZEPHYR, "</s>", ["</s>"], ["<|user|>", "<|assistant|>", "<|system|>"])
    f = t.describe()
    assert f.end_of_turn == "</s>" and not f.appended and f.system == SYSTEM_NATIVE
    (trained,) = _trained(t, CONV)
    assert trained == "An apple.</s>A carrot.</s>"  # the newline after </s> is the next prompt's


def test_end_of_turn_missing_from_generation_config(tmp_path, tiny_model):
    t = _folder(tmp_path, tiny_model, CHATML, "<|endoftext|>", ["<|endoftext|>"])
    f = t.describe()
    assert f.end_of_turn == "<|im_end|>" and "<|im_end|>" in f.stop_tokens and not f.appended
    (trained,) = _trained(t, CONV)
    assert trained == "An apple.<|im_end|>A carrot.<|im_end|>"  # never <|im_end|><|endoftext|>


def test_no_end_of_turn_and_no_system_role(tmp_path, tiny_model):
    t = _folder(tmp_path, tiny_model, PLAIN, "<|endoftext|>", ["<|endoftext|>"])
    f = t.describe()
    assert f.appended and f.end_of_turn == "<|endoftext|>"  # added: the template writes none
    assert f.system == SYSTEM_FOLDED and f.system_fold
    text = t.render(CONV)
    assert text.startswith("User: Be brief.\n\nName a fruit.\n")
    (trained,) = _trained(t, CONV)
    assert trained == " An apple.<|endoftext|> A carrot.<|endoftext|>"


@pytest.mark.parametrize("template", [ZEPHYR, CHATML])
def test_preference_completion_is_the_answer_only(tmp_path, tiny_model, template):
    t = _folder(tmp_path, tiny_model, template, "</s>", ["</s>"], ["<|user|>", "<|assistant|>", "<|system|>"])
    prompt, comp = t.completion(CONV[:4], [CONV[4]])
    assert prompt == t.render(CONV[:4], add_generation_prompt=True)
    assert comp.startswith("A carrot.") and "vegetable" not in comp
