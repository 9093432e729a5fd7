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


@pytest.mark.parametrize("name", list(VISION_FAMILIES))
def test_answers_trained_prompt_and_image_tokens_not(vlm_zoo, images, name):
    from transformers import AutoProcessor
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    from sage_ft_tui.engine.data.images import content_parts, vision_examples
    from sage_ft_tui.engine.data.prepare import with_image_tokens
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
        assert tok.decode(trained) == answer + vf.completion_suffix, name
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
    assert len(counted) == int(batch["attention_mask"][1].sum()), name
