"""The loss mask: prompt tokens get label -100, answer tokens and EOS do not — checked on
the labels TRL's SFTTrainer actually builds from our tokenized data."""

import pytest

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.data.template import ChatTokenizer
from sage_ft_tui.engine.data.trainer_data import prepare_dataset

CONV = [
    {"role": "system", "content": "Be exact."},
    {"role": "user", "content": "What is 2 + 3?"},
    {"role": "assistant", "content": "2 + 3 = 5."},
    {"role": "user", "content": "And 4 + 4?"},
    {"role": "assistant", "content": "4 + 4 = 8."},
]


def test_rendering_and_ids_match_transformers(tiny_model):
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(tiny_model)
    ours = ChatTokenizer(tiny_model)
    assert ours.render(CONV) == hf.apply_chat_template(CONV, tokenize=False)
    assert ours.render(CONV[:2], add_generation_prompt=True) == hf.apply_chat_template(
        CONV[:2], tokenize=False, add_generation_prompt=True
    )
    enc = ours.encode_conversation(CONV)
    assert enc.input_ids == hf(hf.apply_chat_template(CONV, tokenize=False), add_special_tokens=False)["input_ids"]


def test_trained_tokens_are_exactly_the_answers_with_eos(tiny_model):
    ours = ChatTokenizer(tiny_model)
    enc = ours.encode_conversation(CONV)
    trained = [t for t, m in zip(enc.input_ids, enc.completion_mask) if m]
    text = ours.tok.decode(trained, skip_special_tokens=False)
    assert text == "2 + 3 = 5.<|im_end|>4 + 4 = 8.<|im_end|>"  # the newline after the end of turn is prompt
    assert trained.count(ours.eos_id) == 2
    masked = ours.tok.decode(
        [t for t, m in zip(enc.input_ids, enc.completion_mask) if not m], skip_special_tokens=False
    )
    assert "What is 2 + 3?" in masked and "5." not in masked


def test_eos_is_added_when_the_template_forgets_it(tmp_path, tiny_model):
    import shutil

    d = tmp_path / "m"
    shutil.copytree(tiny_model, d)
    (d / "chat_template.jinja").write_text(
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}"
    )
    ours = ChatTokenizer(d)
    enc = ours.encode_conversation(CONV[1:3])
    trained = [t for t, m in zip(enc.input_ids, enc.completion_mask) if m]
    assert trained[-1] == ours.eos_id or ours.tok.decode(trained).strip().endswith("5.")
    assert ours.eos_id in trained


def test_sft_trainer_labels_follow_the_mask(tiny_model, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    rows = [{"messages": CONV}, {"instruction": "Reverse.", "input": "abc", "output": "cba"}]
    ds = prepare_dataset([rows[0]], str(tiny_model), task="chat", max_length=512)
    args = SFTConfig(
        output_dir=str(tmp_path),
        max_length=512,
        packing=False,
        completion_only_loss=True,
        report_to="none",
        use_cpu=True,
    )
    tr = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_model),
        args=args,
        train_dataset=ds,
        processing_class=AutoTokenizer.from_pretrained(tiny_model),
    )
    ex = tr.train_dataset[0]
    ours = ChatTokenizer(tiny_model)
    enc = ours.encode_conversation(CONV)
    assert ex["input_ids"] == enc.input_ids
    for tid, m, lab in zip(enc.input_ids, enc.completion_mask, ex["labels"]):
        assert lab == (tid if m else -100)
    assert ex["labels"][-2] == ours.eos_id  # "<|im_end|>" then "\n"


def test_text_task_trains_everything_and_ends_with_eos(tiny_model):
    ours = ChatTokenizer(tiny_model)
    enc = ours.encode_text("Nairobi is the capital of Kenya.")
    assert all(enc.completion_mask) and enc.input_ids[-1] == ours.eos_id


def test_model_without_template_uses_fallback_but_chat_task_refuses(tmp_path, tiny_model):
    import shutil

    from sage_ft_tui.engine.data.prepare import prepare_run_data
    from sage_ft_tui.engine.errors import SageError

    d = tmp_path / "base"
    shutil.copytree(tiny_model, d)
    (d / "chat_template.jinja").unlink()
    tok = ChatTokenizer(d)
    assert tok.template_source == "fallback"
    assert "### Response:" in tok.render(CONV[1:3])
    cfg = RunConfig.from_dict({"task": "chat", "model": {"name": str(d)}, "data": {"paths": ["x"]}})
    with pytest.raises(SageError, match="no chat template"):
        prepare_run_data(cfg, tmp_path / "run")
