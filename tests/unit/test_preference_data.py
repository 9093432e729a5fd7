"""Preference / GRPO rows and the new chat shapes (LLaMA-Factory v1 parts, reasoning, tool
calls, loss_weight, OpenAI tool_calls): detection, bad rows with file:line, and the exact
tokens and masks the trainers get, through the real tiny-model tokenizer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sage_ft_tui.engine.data.formats import RowError, normalize, row_format
from sage_ft_tui.engine.data.load import load_training_data
from sage_ft_tui.engine.data.preference import encode_preference, normalize_pair, normalize_prompt, prompt_text
from sage_ft_tui.engine.data.template_checks import template_warnings
from sage_ft_tui.engine.errors import SageError

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "preference"


@pytest.fixture(scope="module")
def tok(tiny_model):
    from sage_ft_tui.engine.data.template import ChatTokenizer

    return ChatTokenizer(tiny_model)


def trained_text(tok, enc) -> str:
    return tok.tok.decode([t for t, m in zip(enc.input_ids, enc.completion_mask) if m], skip_special_tokens=False)


def masked_text(tok, enc) -> str:
    return tok.tok.decode([t for t, m in zip(enc.input_ids, enc.completion_mask) if not m], skip_special_tokens=False)


def test_dpo_sharegpt_pairs_share_the_prompt_and_score_only_answers(tok):
    loaded = load_training_data([str(FIX / "dpo_sharegpt.json")], task="preference")
    assert loaded.format == "pairs" and len(loaded.records) == 8 and not loaded.bad
    rec = loaded.records[0]
    enc = encode_preference(tok, rec)
    # one prompt, tokenized once: chosen and rejected both continue exactly these ids
    assert enc["prompt_ids"] == tok.encode(
        "<|im_start|>user\nWhat is the capital of Kenya?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert tok.tok.decode(enc["chosen_ids"], skip_special_tokens=False) == "Nairobi is the capital of Kenya.<|im_end|>"
    assert tok.tok.decode(enc["rejected_ids"], skip_special_tokens=False) == "Mombasa, I think.<|im_end|>"
    assert enc["chosen_ids"][-1] == enc["rejected_ids"][-1] == tok.eos_id


def test_kto_rows_and_v1_dpo_implicit_prompt(tok):
    kto = load_training_data([str(FIX / "kto_messages.json")], task="preference")
    assert kto.format == "kto" and [r["label"] for r in kto.records[:4]] == [True, False, True, False]
    enc = encode_preference(tok, kto.records[1])
    assert tok.tok.decode(enc["completion_ids"], skip_special_tokens=False) == "Green, maybe purple.<|im_end|>"
    v1 = load_training_data([str(FIX / "v1_dpo.jsonl")], task="preference")
    rec = v1.records[0]
    assert [m["role"] for m in rec["prompt"]] == ["system", "user"]
    assert rec["chosen"] == [{"role": "assistant", "content": "Nairobi is the capital of Kenya."}]
    assert prompt_text(tok, rec).startswith("<|im_start|>system\nYou answer briefly.<|im_end|>")


def test_ultrafeedback_and_trl_shapes():
    raw = {
        "instruction": "Say hi",
        "completions": [{"response": "hey", "overall_score": 2}, {"response": "Hello!", "overall_score": 9}],
    }
    assert row_format(raw) == "pairs"
    rec = normalize_pair(raw)
    assert rec["chosen"][0]["content"] == "Hello!" and rec["rejected"][0]["content"] == "hey"
    binarized = {
        "prompt": "Say hi",
        "chosen": [{"role": "user", "content": "Say hi"}, {"role": "assistant", "content": "Hello!"}],
        "rejected": [{"role": "user", "content": "Say hi"}, {"role": "assistant", "content": "hey"}],
        "score_chosen": 9.0,
    }
    rec = normalize_pair(binarized)
    assert rec["prompt"] == [{"role": "user", "content": "Say hi"}] and rec["rejected"][0]["content"] == "hey"
    alpaca = normalize_pair(
        {"instruction": "Add", "input": "2 and 2", "chosen": "4", "rejected": "5", "system": "Be exact."}
    )
    assert alpaca["prompt"] == [
        {"role": "system", "content": "Be exact."},
        {"role": "user", "content": "Add\n\n2 and 2"},
    ]


def test_bad_pairs_name_file_line_and_reason(tmp_path):
    f = tmp_path / "pairs.jsonl"
    rows = [
        {"prompt": "Q1", "chosen": "good", "rejected": "bad"},
        {"prompt": "Q2", "chosen": "good"},
        {"prompt": "Q3", "chosen": "same", "rejected": "same"},
        {"prompt": "  ", "chosen": "a", "rejected": "b"},
        {"prompt": "Q5", "chosen": "", "rejected": "b"},
        {"prompt": "Q6", "chosen": "good", "rejected": "bad"},
    ]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    loaded = load_training_data([str(f)], task="preference", max_bad_share=1.0)
    assert [(b.where, b.reason) for b in loaded.bad] == [
        (f"{f}:2", "missing answer 'rejected'"),
        (f"{f}:3", "chosen and rejected are the same answer"),
        (f"{f}:4", "empty prompt"),
        (f"{f}:5", "missing answer 'chosen'"),
    ]
    with pytest.raises(SageError) as e:  # 4 of 6 bad: over the default share, one line naming the first
        load_training_data([str(f)], task="preference")
    assert f"{f}:2: missing answer 'rejected'" in e.value.message


def test_preference_data_refused_by_sft_tasks_and_sft_data_by_preference():
    with pytest.raises(SageError) as e:
        load_training_data([str(FIX / "dpo_sharegpt.json")], task="chat")
    assert "preference rows" in e.value.message and "--task preference" in e.value.hint
    with pytest.raises(SageError) as e:
        load_training_data([str(FIX / "v1_sft.jsonl")], task="preference")
    assert "chosen/rejected pairs" in e.value.message


def test_v1_parts_loss_weight_and_reasoning_masks(tok):
    from sage_ft_tui.engine.data.encode import encode_record

    loaded = load_training_data([str(FIX / "v1_sft.jsonl")], task="chat")
    assert loaded.format == "messages" and len(loaded.records) == 8
    rec = loaded.records[0]
    assert rec["messages"][1]["train"] is False and rec["messages"][3]["reasoning_content"]
    trained = trained_text(tok, encode_record(tok, rec))
    # the loss_weight 0 greeting is not trained; the answer with its reasoning (as <think> text) is
    assert "Hello! Ask me anything." not in trained
    assert trained == "<think>\nRecall the fact, then state it.\n</think>\n\nNairobi is the capital of Kenya.<|im_end|>"
    masked_reasoning = trained_text(tok, encode_record(tok, rec, mask_reasoning=True))
    assert (
        "Recall the fact" not in masked_reasoning and "Nairobi is the capital of Kenya.<|im_end|>" in masked_reasoning
    )
    assert (
        template_warnings(tok, loaded.records, "tiny-demo")
        and "reasoning (8 rows)" in template_warnings(tok, loaded.records, "tiny-demo")[0]
    )


def test_glaive_tool_calls_schema_in_prompt_and_call_trained(tok):
    from sage_ft_tui.engine.data.encode import encode_record

    loaded = load_training_data([str(FIX / "glaive_toolcall.json")], task="chat")
    rec = loaded.records[0]
    assert json.loads(rec["messages"][1]["tool_calls"]) == [{"name": "get_weather", "arguments": {"city": "Nairobi"}}]
    enc = encode_record(tok, rec)
    prompt_part, trained = masked_text(tok, enc), trained_text(tok, enc)
    assert '"name": "get_weather", "description": "Current weather of a city"' in prompt_part  # schema in the prompt
    # ChatML renders any role, so the tool result keeps its own turn, and is not trained
    assert '<|im_start|>tool\n{"weather": "sunny, 24 C"}<|im_end|>' in prompt_part
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Nairobi"}}\n</tool_call><|im_end|>' in trained
    assert "It is sunny, 24 C in Nairobi.<|im_end|>" in trained
    (warning,) = template_warnings(tok, loaded.records, "tiny-demo")
    assert "tool schemas (4 rows)" in warning and "tool calls (4 rows)" in warning and "data.tool_format" in warning


def test_openai_tool_calls_with_null_content(tok):
    from sage_ft_tui.engine.data.encode import encode_record

    loaded = load_training_data([str(FIX / "openai_tools.jsonl")], task="chat")
    rec = loaded.records[0]
    assert rec["messages"][1]["content"] == "" and rec["messages"][2]["tool_call_id"] == "call_1"
    trained = trained_text(tok, encode_record(tok, rec))
    assert trained.startswith('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Nairobi"}}')
    with pytest.raises(RowError, match="not valid JSON"):
        normalize(
            {
                "messages": [
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [{"function": {"name": "f", "arguments": "{"}}],
                    }
                ]
            },
            "messages",
        )
    with pytest.raises(RowError, match="every assistant turn has loss_weight 0"):
        normalize(
            {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "loss_weight": 0}]},
            "messages",
        )


def test_a_tool_aware_template_renders_tools_itself(tiny_model, tmp_path):
    from sage_ft_tui.engine.data.template import ChatTokenizer

    d = tmp_path / "toolmodel"
    d.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        if (tiny_model / name).exists():
            shutil.copy(tiny_model / name, d / name)
    (d / "chat_template.jinja").write_text(
        "{% if tools %}<|im_start|>system\nTOOLS:{% for t in tools %}{{ t['name'] }};{% endfor %}<|im_end|>\n{% endif %}"
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
        "{% if m.tool_calls %}{% for c in m.tool_calls %}CALL {{ c.function.name }} {{ c.function.arguments | tojson }}"
        "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    tok = ChatTokenizer(d)
    loaded = load_training_data([str(FIX / "glaive_toolcall.json")], task="chat")
    rec = loaded.records[0]
    text = tok.render(rec["messages"], tools=json.loads(rec["tools"]))
    assert text.startswith("<|im_start|>system\nTOOLS:get_weather;") and 'CALL get_weather {"city": "Nairobi"}' in text
    assert "<tool_call>" not in text and "<tools>" not in text
    assert template_warnings(tok, loaded.records, "toolmodel") == []
    as_json = tok.with_tool_format("json").render(rec["messages"], tools=json.loads(rec["tools"]))
    assert "<tools>" in as_json and "<tool_call>" in as_json  # the user's choice: the text form


def test_grpo_prompts_keep_the_reference_answer():
    rec = normalize_prompt({"prompt": "What is 2 + 3?", "answer": 5})
    assert rec == {"prompt": [{"role": "user", "content": "What is 2 + 3?"}], "answer": "5"}
    rec = normalize_prompt({"question": "Capital of Peru?", "answer": "Lima"})
    assert rec["answer"] == "Lima" and rec["prompt"][-1]["content"] == "Capital of Peru?"
    rec = normalize_prompt({"instruction": "Add 1 and 1", "output": "2"})
    assert rec["answer"] == "2" and rec["prompt"] == [{"role": "user", "content": "Add 1 and 1"}]
    with pytest.raises(RowError, match="missing reference answer 'answer'"):
        normalize_prompt({"prompt": "no answer here", "answer": ""})
    loaded = load_training_data([str(FIX / "grpo_math.jsonl")], task="grpo")
    assert len(loaded.records) == 8 and loaded.records[0]["answer"] == "5"


def test_config_checks_and_pair_memory():
    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.hardware.estimate import TrainSetup, estimate_memory

    with pytest.raises(SageError, match="kto .*micro-batch of 2"):
        RunConfig.from_dict({"task": "preference", "training": {"micro_batch_size": 1}})
    with pytest.raises(SageError, match="multiple of grpo.num_generations"):
        RunConfig.from_dict({"task": "grpo", "training": {"micro_batch_size": 3, "grad_accumulation": 1}})
    one = estimate_memory("tiny-demo", TrainSetup(device="cpu", dtype="float32", micro_batch=2, max_length=256))
    pair = estimate_memory(
        "tiny-demo", TrainSetup(device="cpu", dtype="float32", micro_batch=2, max_length=256, sequences=2)
    )
    assert pair.activations == 2 * one.activations and pair.weights == one.weights


def test_data_step_previews_pairs_side_by_side_and_marks_tools():
    from rich.console import Console

    from sage_ft_tui.engine.data.inspect import inspect_data
    from sage_ft_tui.tui.widgets.pairs import pairs_preview, segments_text

    console = Console(width=100, color_system=None, record=True)
    ins = inspect_data([str(FIX / "dpo_sharegpt.json")], task="preference", preview=1)
    assert ins.ok and ins.pairs[0]["chosen"].startswith("Nairobi") and ins.token_lengths
    console.print(pairs_preview(ins.pairs))
    side_by_side = next(ln for ln in console.export_text().splitlines() if "Nairobi" in ln)
    assert "Mombasa" in side_by_side  # chosen and rejected on the same line, in two columns
    ins = inspect_data([str(FIX / "glaive_toolcall.json")], task="chat", preview=1)
    assert ins.warnings and "tool schemas" in ins.warnings[0]
    text = segments_text(ins.preview[0])
    assert "⚙ tool schemas <tools>" in text.plain and "→ tool call <tool_call>" in text.plain
    call = text.plain.index('{"name": "get_weather", "arguments"')
    from sage_ft_tui.tui.widgets.pairs import PART_STYLES

    call_style = str(PART_STYLES["call"])  # theme colours drop out without an app; "bold" stays
    assert call_style and any(s.start <= call < s.end and call_style in str(s.style) for s in text.spans)
