"""The inspector's fast paths give the answers of the plain checks: the literal scan is
`any(lit in text)`, a batch with nothing to find passes whole, and one odd row in a big
batch is still found where it is; exact duplicates are found by equality, key order aside."""

from __future__ import annotations

import itertools
import json
import random

import pytest

from sage_ft_tui.engine.data.formats import PREFERENCE_FORMATS, PREFERENCE_KEYS, row_format
from sage_ft_tui.engine.data.literals import LiteralScan
from sage_ft_tui.engine.data.load import find_duplicates, load_training_data
from sage_ft_tui.engine.data.row_checks import CHECK_BATCH, MULTIMODAL_WORDS
from sage_ft_tui.engine.data.secrets import SECRET_LITERALS
from sage_ft_tui.engine.errors import SageError


@pytest.mark.parametrize("literals", [SECRET_LITERALS, MULTIMODAL_WORDS], ids=["secrets", "media"])
def test_literal_scan_is_any_substring(literals):
    scan = LiteralScan(literals)
    rng = random.Random(0)
    alphabet = "".join(sorted(set("".join(literals)))) + " \n"
    texts = [lit for lit in literals] + [lit[:-1] for lit in literals] + [lit[1:] for lit in literals]
    for _ in range(3000):  # near misses: text made of the literals' own characters and pieces
        parts = [rng.choice(literals)[: rng.randint(1, 6)] if rng.random() < 0.5 else rng.choice(alphabet)]
        texts.append("".join(parts + [rng.choice(alphabet) for _ in range(rng.randint(0, 12))]))
    for text in texts:
        assert scan(text) == any(lit in text for lit in literals), repr(text)


def test_every_preference_row_holds_a_preference_key():
    keys = ["chosen", "rejected", "chosen_messages", "rejected_messages", "completions", "label", "prompt"]
    keys += ["instruction", "completion", "messages", "conversations", "text", "output", "input", "question"]
    for n in (1, 2, 3):
        for combo in itertools.combinations(keys, n):
            row = {k: ([] if k == "completions" else "x") for k in combo}
            if row_format(row) in PREFERENCE_FORMATS:
                assert set(combo) & set(PREFERENCE_KEYS), combo


def _write(tmp_path, rows):
    p = tmp_path / "d.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p


ROWS = [{"instruction": f"Add {i} and {i + 1}.", "output": f"{2 * i + 1}"} for i in range(3 * CHECK_BATCH)]


def test_one_odd_row_in_a_big_batch_is_found_where_it_is(tmp_path):
    rows = [dict(r) for r in ROWS]
    rows[300]["input"] = "Dear {{customer_name}},"
    rows[700]["output"] = "token sk-proj-" + "Zq7" * 12
    got = load_training_data(_write(tmp_path, rows), max_bad_share=0.5)
    assert [b.where.rsplit(":", 1)[1] for b in got.bad] == ["701"] and "openai key" in got.bad[0].reason
    kinds = {f.kind: f for f in got.findings}
    assert kinds["placeholder"].where.endswith(":301") and kinds["secret"].where.endswith(":701")
    assert len(got.records) == len(rows) - 1 and got.duplicates == 0


@pytest.mark.parametrize(
    "odd, what",
    [({"videos": ["a.mp4"]}, "field 'videos'"), ({"chosen": "a", "rejected": "b"}, "preference data")],
)
def test_a_media_or_preference_row_deep_in_the_data_is_refused(tmp_path, odd, what):
    rows = [dict(r) for r in ROWS]
    rows[CHECK_BATCH + 5] |= odd
    with pytest.raises(SageError, match=what) as e:
        load_training_data(_write(tmp_path, rows))
    assert e.value.where.endswith(f":{CHECK_BATCH + 6}")


def test_duplicates_are_exact_and_ignore_key_order():
    a = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    a_reordered = {"messages": [{"content": "hi", "role": "user"}, {"content": "yo", "role": "assistant"}]}
    near = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo!"}]}
    same_texts = {"messages": [{"role": "system", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    recs = [a, near, a_reordered, same_texts, near, a, same_texts, {"text": "yo"}, {"text": "yo"}]
    dup = find_duplicates(recs, ["f:1", "f:2", "g:3", "f:4", "f:5", "f:6", "f:7", "f:8", "f:9"])
    assert dup.groups == [0, 1, 0, 3, 1, 0, 3, 7, 7] and dup.count == 5  # same texts, other roles: not a copy
    assert dup.first_where == "g:3 repeats f:1" and dup.across_files
