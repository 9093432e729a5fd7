"""Every zoo VLM (tests/zoo/vlm.py), rendered and masked the way training does it: TRL's
vision collator with the model's own processor on our prompt/completion examples. Checked
against the processor's own token ids: the image tokens and the prompt are untrained, the
answer and its end of turn are, the torch-free preview renders what the processor renders,
and the torch-free token count (truncation report) is the processor's. No training here
(tests/e2e/test_vision.py trains one family end to end)."""

from __future__ import annotations

import pytest
from PIL import Image

from tests.zoo.vlm import VISION_FAMILIES

ANSWER = "It is red."
ROW = {
    "messages": [
        {"role": "system", "content": "Answer in three words."},
        {"role": "user", "content": "<image>What colour is this?"},
        {"role": "assistant", "content": ANSWER},
        {"role": "user", "content": "And this one?<image>"},
        {"role": "assistant", "content": "It is blue."},
    ],
}
SIZES = [(40, 30), (64, 20)]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("vlm-images")
    paths = []
    for i, (w, h) in enumerate(SIZES):
        p = d / f"{i}.png"
        Image.new("RGB", (w, h), (200, 10 * i, 10)).save(p)
        paths.append(str(p))
    return paths


def _torchvision() -> bool:
    import importlib.util

    return importlib.util.find_spec("torchvision") is not None


@pytest.mark.parametrize("name", list(VISION_FAMILIES))
def test_answers_trained_prompt_and_image_tokens_not(vlm_zoo, images, name):
    if VISION_FAMILIES[name].needs_torchvision and not _torchvision():
        pytest.skip(f"{name}: transformers builds this processor only with torchvision, which is not installed")
    from transformers import AutoProcessor
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    from sage_ft_tui.engine.data.encode import with_image_tokens
    from sage_ft_tui.engine.data.images import content_parts, vision_examples
    from sage_ft_tui.engine.data.template import ChatTokenizer
    from sage_ft_tui.engine.models.vision import image_tokens

    vf = VISION_FAMILIES[name]
    mdir = vlm_zoo[name]
    proc = AutoProcessor.from_pretrained(str(mdir))
    rec = dict(ROW, images=images)
    examples = vision_examples(rec)
    assert [len(e["images"]) for e in examples] == [1, 2]  # each answer sees the images before it
    collate = DataCollatorForVisionLanguageModeling(processor=proc, completion_only_loss=True)
    batch = collate([dict(e, images=[Image.open(p) for p in e["images"]]) for e in examples])
    tok = proc.tokenizer
    image_id = tok.convert_tokens_to_ids(vf.image_token)
    for row, (ex, answer) in enumerate(zip(examples, (ANSWER, "It is blue."))):
        ids, labels = batch["input_ids"][row], batch["labels"][row]
        trained = [int(i) for i, lab in zip(ids, labels) if lab != -100]
        assert tok.decode(trained) == vf.completion_prefix + answer + vf.completion_suffix, name
        # no image token and no prompt token is trained
        assert not any(int(i) == image_id and lab != -100 for i, lab in zip(ids, labels))
        first_trained = next(k for k, lab in enumerate(labels) if lab != -100)
        assert all(lab == -100 for lab in labels[:first_trained])
        # the torch-free arithmetic (truncation report, memory) says what the processor did
        n_image = sum(1 for i in ids if int(i) == image_id)
        want = sum(image_tokens(mdir, *SIZES[k]) for k in range(len(ex["images"])))
        assert n_image == want - vf.image_extra * len(ex["images"]), name
    # the preview (torch-free ChatTokenizer) renders what the processor renders
    ctok = ChatTokenizer(mdir)
    prompt = ROW["messages"][:4]
    ours = ctok.render(prompt, add_generation_prompt=True)
    theirs = proc.apply_chat_template(content_parts(prompt), add_generation_prompt=True, tokenize=False)
    assert ours == theirs, name
    # and its length with the images counted is the collator's
    enc = ctok.encode_examples(ROW["messages"])[-1]
    counted, _ = with_image_tokens(enc.input_ids, enc.completion_mask, rec, mdir)
    got = int(batch["attention_mask"][1].sum())
    assert got - vf.length_slack * 2 <= len(counted) <= got, name


def test_qwen2_vl_without_torchvision_renders_counts_and_refuses_in_one_line(vlm_zoo, images):
    """Qwen2-VL's processor needs torchvision here (transformers builds its video processor);
    without it the preview, the counts and the refusal still hold."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.data.template import ChatTokenizer
    from sage_ft_tui.engine.errors import SageError
    from sage_ft_tui.engine.models.vision import image_tokens
    from sage_ft_tui.engine.train.vision import load_processor

    mdir = vlm_zoo["qwen2-vl"]
    got = ChatTokenizer(mdir).render(ROW["messages"][1:2], add_generation_prompt=True)
    assert got == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        "<|vision_start|><|image_pad|><|vision_end|>What colour is this?<|im_end|>\n<|im_start|>assistant\n"
    )
    ip = Qwen2VLImageProcessorPil.from_pretrained(str(mdir))
    for w, h in [*SIZES, (300, 100)]:
        grid = ip(images=[Image.new("RGB", (w, h))], return_tensors="pt")["image_grid_thw"][0]
        assert image_tokens(mdir, w, h) == int(grid.prod()) // 4, (w, h)
    if _torchvision():
        return
    cfg = RunConfig.from_dict({"task": "chat", "model": {"name": str(mdir)}, "data": {"paths": ["x.jsonl"]}})
    with pytest.raises(SageError) as e:
        load_processor(cfg, mdir)
    assert "torchvision" in e.value.hint and "\n" not in e.value.message


def test_memory_estimate_counts_the_vision_tower(vlm_zoo):
    """The estimate's parameter count (text model + tower + projector, from config.json) is the
    loaded model's within 3% for every zoo VLM; without the tower it would not be for LLaVA."""
    import json

    from transformers import AutoModelForImageTextToText

    from sage_ft_tui.engine.models.shape import shape_from_config

    for name, mdir in vlm_zoo.items():
        shape = shape_from_config(json.loads((mdir / "config.json").read_text()))
        real = sum(p.numel() for p in AutoModelForImageTextToText.from_pretrained(str(mdir)).parameters())
        assert shape.vision_params > 0 and abs(shape.total_params - real) <= 0.03 * real, name
        if name == "llava-interleave-qwen":
            assert abs(shape.total_params - shape.vision_params - real) > 0.03 * real


@pytest.mark.parametrize("name", list(VISION_FAMILIES))
def test_lora_vision_puts_adapters_where_it_says(vlm_zoo, name):
    """lora.vision on each family's real module tree (built on the meta device): frozen = the
    language model's linears only; projector = + the projector trained fully; tower = + the tower."""
    import torch
    from transformers import AutoConfig

    from sage_ft_tui.engine.errors import SageError
    from sage_ft_tui.engine.models.vision import auto_class, part_of
    from sage_ft_tui.engine.train.vision import vision_targets

    mdir = vlm_zoo[name]
    with torch.device("meta"):
        model = auto_class(mdir).from_config(AutoConfig.from_pretrained(str(mdir)))
    frozen = vision_targets(model, "all-linear", "frozen")
    assert frozen["target_modules"] and {part_of(n) for n in frozen["target_modules"]} == {"language"}
    assert "modules_to_save" not in frozen
    proj = vision_targets(model, ["q_proj", "v_proj"], "projector")
    assert {n.rsplit(".", 1)[-1] for n in proj["target_modules"]} == {"q_proj", "v_proj"}
    assert proj["modules_to_save"], name
    tower = vision_targets(model, "all-linear", "tower")
    assert {part_of(n) for n in tower["target_modules"]} == {"language", "tower"}, name
    with pytest.raises(SageError, match="no such linear layer"):
        vision_targets(model, ["qkv_typo"], "frozen")
