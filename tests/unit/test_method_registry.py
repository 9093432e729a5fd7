"""The method registry (engine/methods/registry.py): every task and preference method comes from
its descriptor module, and the schema, the CLI help and the config builder read it."""

from __future__ import annotations

import re
import subprocess
import sys
import typing

import pytest

from sage_ft_tui.engine.config.build import preference_uses
from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.config.sections import PreferenceSection, Task
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.methods.registry import (
    all_tasks,
    check_task_format,
    method_names,
    preference_methods,
    sequences_per_sample,
    task_spec,
)


def test_the_schema_lists_what_the_registry_holds():
    assert typing.get_args(Task) == tuple(all_tasks())
    assert typing.get_args(PreferenceSection.model_fields["method"].annotation) == method_names()
    assert {"qa", "instruction", "chat", "text", "code", "preference", "grpo"} <= set(all_tasks())
    assert {"dpo", "orpo", "simpo", "kto"} <= set(preference_methods())
    with pytest.raises(SageError, match="unknown task 'nope'.*choose one of: qa"):
        task_spec("nope")


def test_cli_task_help_reads_the_registry():
    from sage_ft_tui.cli.options import TASK_HELP

    assert TASK_HELP.split(" | ") == list(all_tasks())


def test_descriptors_agree_with_the_config():
    fields = set(PreferenceSection.model_fields)
    for m in preference_methods().values():
        assert set(m.settings) <= fields, m.name  # a method reads only keys the schema has
    for t in all_tasks().values():
        assert t.section is None or t.section in RunConfig.model_fields, t.name
    assert sequences_per_sample("preference") == 2 and sequences_per_sample("qa") == 1
    assert preference_uses()["simpo_gamma"] == ("simpo",)
    assert set(preference_uses()["loss_type"]) == {"dpo", "auto"}


def test_a_format_the_task_does_not_take_is_refused_in_one_line():
    check_task_format("qa", "alpaca")
    with pytest.raises(SageError, match="use the preference task"):
        check_task_format("chat", "pairs")
    with pytest.raises(SageError, match="choose the qa, instruction or chat task"):
        check_task_format("text", "alpaca")


def test_reading_the_registry_loads_no_ml_stack():
    code = (
        "import sys; from sage_ft_tui.engine.methods.registry import all_tasks, preference_methods;"
        "all_tasks(); preference_methods(); print(*[m for m in ('torch', 'trl', 'transformers') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_every_task_names_a_kind_of_the_data_path():
    from sage_ft_tui.engine.data.per_task import DATA_KINDS, task_data

    for name, t in all_tasks().items():
        assert t.records in DATA_KINDS, name
        assert task_data(name) is DATA_KINDS[t.records]
    assert task_data("chat").needs_template and not task_data("qa").needs_template


@pytest.mark.parametrize(
    "raw, problem",
    [
        ({"task": "text", "data": {"format": "alpaca"}}, "task / data.format: the text task trains on plain text"),
        ({"task": "preference", "training": {"micro_batch_size": 1}}, "kto (which auto picks for labelled rows)"),
        (
            {
                "task": "grpo",
                "training": {"micro_batch_size": 2, "grad_accumulation": 1},
                "grpo": {"num_generations": 4},
            },
            "must be a multiple of grpo.num_generations (4)",
        ),
    ],
)
def test_the_task_descriptor_refuses_its_own_combinations(raw, problem):
    with pytest.raises(SageError, match=re.escape(problem)):
        RunConfig.from_dict(raw)
    assert RunConfig.from_dict({**raw, "task": "qa"}).task == "qa"  # the same settings on another task are fine


def test_the_tasks_taking_images_come_from_their_descriptors():
    from sage_ft_tui.engine.methods.registry import image_tasks

    assert image_tasks() == ("qa", "instruction", "chat")  # text, code, preference and GRPO rows are text
