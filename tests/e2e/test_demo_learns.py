"""The demo visibly learns: after `sage-ft-tui demo` the tuned model answers the demo
question with the trained phrase (printed by the demo, then asked through the real
`openai` client against `transformers serve`), the base does not, and the eval report
shows the tuned answer loss well below the base's."""

from __future__ import annotations

import shutil

import pytest

from sage_ft_tui.engine.recipes.demo import DEMO_PHRASE, DEMO_QUESTION
from tests.adapters import serving

from .conftest import json_lines

pytestmark = pytest.mark.train


def test_demo_prints_base_and_tuned_answers(demo_run):
    rec = [e for e in json_lines(demo_run["stdout"]) if e.get("kind") == "demo_answers"]
    assert len(rec) == 1, demo_run["stdout"][-2000:]
    a = rec[0]
    assert a["question"] == DEMO_QUESTION and a["learned"] is True
    assert DEMO_PHRASE in a["tuned"] and DEMO_PHRASE not in a["base"]
    assert a["base"].strip()  # the pre-trained base writes something, not blank lines


@pytest.fixture(scope="module")
def merged_demo(demo_run, tmp_path_factory):
    """A copy of the shared demo run (the others read it untouched), merged."""
    from sage_ft_tui.engine.deploy.merge import merge_run

    run = tmp_path_factory.mktemp("demo-copy") / demo_run["run"].name
    shutil.copytree(demo_run["run"], run)
    assert merge_run(run)["self_check"]["passed"]
    return run


@pytest.fixture(scope="module")
def served_demo(merged_demo):
    yield from serving(merged_demo)


def test_served_demo_answers_with_the_trained_phrase(served_demo):
    from openai import OpenAI

    run, info = served_demo
    client = OpenAI(base_url=info["base_url"], api_key="not-needed", max_retries=0, timeout=120)
    r = client.chat.completions.create(
        model=info["model"], messages=[{"role": "user", "content": DEMO_QUESTION}], temperature=0, max_tokens=40
    )
    assert DEMO_PHRASE in (r.choices[0].message.content or "")
