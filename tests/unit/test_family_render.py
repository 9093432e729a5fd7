"""Every zoo family is trained token for token as it is served: the ids of a training
example are the family tokenizer's ids of `apply_chat_template` (the whole conversation
where the template renders it as one, else each answer's inference prompt), and exactly
the answers and the family's own end of turn are trained. Preference completions hold no
prompt text; a GRPO prompt is the inference prompt."""

from __future__ import annotations

import pytest

from sage_ft_tui.engine.data.chat_facts import SYSTEM_FOLDED, SYSTEM_LAST_USER, SYSTEM_NATIVE
from sage_ft_tui.engine.data.preference import completion_text, prompt_text
from sage_ft_tui.engine.data.template import ChatTokenizer
from tests.zoo.families import FAMILIES

SYSTEM = {"role": "system", "content": "Answer in one short sentence."}
TURNS = [
    {"role": "user", "content": "What is the capital of Kenya?"},
    {"role": "assistant", "content": "Nairobi is the capital of Kenya."},
    {"role": "user", "content": "And of Peru?"},
    {"role": "assistant", "content": "Lima is the capital of Peru."},
    {"role": "user", "content": "Which is larger?"},
    {"role": "assistant", "content": "Lima has more people."},
]
CONVERSATIONS = {
    "single": TURNS[:2],
    "multi": TURNS,
    "system-single": [SYSTEM, *TURNS[:2]],
    "system-multi": [SYSTEM, *TURNS],
}
SYSTEM_OF = {"native": SYSTEM_NATIVE, "none": SYSTEM_FOLDED, "folded": SYSTEM_FOLDED, "last-user": SYSTEM_LAST_USER}


def _hf(path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))


def _as_served(fam, conv: list[dict]) -> list[dict]:
    """The conversation a family without a system role receives: folded like Gemma 3 does."""
    if fam.system != "none" or conv[0]["role"] != "system":
        return conv
    first = {"role": "user", "content": conv[0]["content"] + "\n\n" + conv[1]["content"]}
    return [first, *conv[2:]]


def _ids(hf, conv: list[dict], gen: bool = False) -> list[int]:
    out = hf.apply_chat_template(conv, tokenize=True, add_generation_prompt=gen)
    return list(out["input_ids"] if hasattr(out, "keys") else out)


def _runs(ids: list[int], mask: list[int]) -> list[tuple[int, int]]:
    runs, start = [], None
    for k, m in enumerate([*mask, 0]):
        if m and start is None:
            start = k
        elif not m and start is not None:
            runs.append((start, k))
            start = None
    return runs


def _renders_as_live(hf, fam, conv: list[dict], answers: list[int]) -> bool:
    """Whether the template's render of the whole conversation holds every answer as it is
    produced live: after its inference prompt, rendered as when it is the newest turn."""
    whole = hf.apply_chat_template(_as_served(fam, conv), tokenize=False)
    for i in answers:
        live = hf.apply_chat_template(_as_served(fam, conv[:i]), tokenize=False, add_generation_prompt=True)
        newest = hf.apply_chat_template(_as_served(fam, conv[: i + 1]), tokenize=False)
        upto = newest[: newest.find(conv[i]["content"]) + len(conv[i]["content"])]
        if not (whole.startswith(live) and whole.startswith(upto)):
            return False
    return True


@pytest.fixture(scope="module")
def chat(zoo):
    cache: dict[str, tuple] = {}

    def get(name):
        if name not in cache:
            cache[name] = (ChatTokenizer(zoo[name]), _hf(zoo[name]))
        return cache[name]

    return get


@pytest.mark.parametrize("name", list(FAMILIES))
def test_facts_come_from_the_template(chat, name):
    fam = FAMILIES[name]
    ours, hf = chat(name)
    facts = ours.describe()
    assert facts.end_of_turn == fam.end_of_turn and not facts.appended
    assert facts.end_of_turn in facts.stop_tokens
    assert facts.system == SYSTEM_OF[fam.system]
    assert facts.system_fold == (fam.system == "none")
    assert ("reasoning" in (facts.history or "")) == fam.drops_reasoning or facts.history


@pytest.mark.parametrize("name", list(FAMILIES))
@pytest.mark.parametrize("kind", list(CONVERSATIONS))
def test_ids_and_mask_are_the_served_ones(chat, name, kind):
    fam = FAMILIES[name]
    ours, hf = chat(name)
    conv = CONVERSATIONS[kind]
    served = _as_served(fam, conv)
    encs = ours.encode_examples(conv)
    answers = [i for i, m in enumerate(conv) if m["role"] == "assistant"]
    if _renders_as_live(hf, fam, conv, answers):  # the conversation as inference sees it: one example, its ids
        assert len(encs) == 1 and encs[0].input_ids == _ids(hf, served), f"{name}/{kind}: ids differ"
    else:  # history renders unlike the live turn (Mistral's system, reasoning): each answer on its own prompt
        assert len(encs) == len(answers) > 1 or len(answers) == 1
    eot_id = hf.convert_tokens_to_ids(fam.end_of_turn)
    found = 0
    for i in answers:
        prompt = _ids(hf, _as_served(fam, conv[:i]), gen=True)
        enc = next(e for e in encs if e.input_ids[: len(prompt)] == prompt and any(e.completion_mask[len(prompt) :]))
        ids, mask = enc.input_ids, enc.completion_mask
        earlier = sum(1 for j in answers if j < i and j > 0)  # answers inside this prompt (same example)
        assert len(_runs(ids[: len(prompt)], mask[: len(prompt)])) <= earlier, f"{name}/{kind}: prompt trained"
        assert not mask[len(prompt) - 1], f"{name}/{kind}: the prompt's last token is trained"
        run = next(r for r in _runs(ids, mask) if r[0] >= len(prompt))
        assert run[0] == len(prompt), f"{name}/{kind}: the answer does not start right after the prompt"
        trained = ids[run[0] : run[1]]
        assert trained[-1] == eot_id and trained.count(eot_id) == 1, f"{name}/{kind}: not ended by {fam.end_of_turn}"
        text = hf.decode(trained[:-1], skip_special_tokens=False)
        assert conv[i]["content"] in text and "capital of" not in text.replace(conv[i]["content"], "")
        found += 1
    assert found == len(answers)
    for enc in encs:  # nothing but answers and their ends of turn is trained
        trained = [t for t, m in zip(enc.input_ids, enc.completion_mask) if m]
        assert trained.count(eot_id) == len(_runs(enc.input_ids, enc.completion_mask))
        text = hf.decode(trained, skip_special_tokens=False)
        assert "What is" not in text and "And of Peru" not in text and "one short sentence" not in text


@pytest.mark.parametrize("name", list(FAMILIES))
def test_preference_and_grpo_use_the_inference_prompt(chat, name):
    fam = FAMILIES[name]
    ours, hf = chat(name)
    prompt = [SYSTEM, *TURNS[:3]]
    rec = {
        "prompt": prompt,
        "chosen": [{"role": "assistant", "content": "Lima is the capital of Peru."}],
        "rejected": [{"role": "assistant", "content": "Quito."}],
    }
    head = prompt_text(ours, rec)
    assert head == hf.apply_chat_template(_as_served(fam, prompt), tokenize=False, add_generation_prompt=True)
    for side in ("chosen", "rejected"):
        comp = completion_text(ours, rec, rec[side])
        assert "And of Peru" not in comp and "[/INST]" not in comp and "one short sentence" not in comp
        assert comp.endswith(fam.end_of_turn) and rec[side][0]["content"] in comp
        # prompt + completion tokenizes to the inference prompt's ids, then the answer's
        ids = ours.encode(head + comp)
        assert ids[: len(_ids(hf, _as_served(fam, prompt), gen=True))] == _ids(hf, _as_served(fam, prompt), gen=True)


def test_fold_is_saved_and_served_the_same(zoo, tmp_path):
    """A family without a system role: the wrapped template loads in transformers from the
    folder it is saved to and folds the system prompt as training did."""
    import shutil

    name = next(n for n, f in FAMILIES.items() if f.system == "none")
    ours = ChatTokenizer(zoo[name])
    assert ours.serving_template and ours.describe().system_fold
    d = tmp_path / "adapter"
    shutil.copytree(zoo[name], d)
    (d / "chat_template.jinja").write_text(ours.serving_template, encoding="utf-8")
    hf = _hf(d)
    conv = [SYSTEM, *TURNS[:2]]
    assert hf.apply_chat_template(conv, tokenize=False) == ours.render(conv)
    assert "Answer in one short sentence.\n\nWhat is the capital of Kenya?" in ours.render(conv)
    again = ChatTokenizer(d)  # loading the saved template does not fold twice
    assert again.template == ours.template and again.render(conv) == ours.render(conv)
