"""The wizard's preview (inspect_data) and run creation (prepare_run_data) present and
write ONE data analysis (engine/data/analysis.py): on the same file they report the same
counts, the same bad rows with file:line, the same template warnings and findings."""

from __future__ import annotations

import json

import pytest

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.data.analysis import sample_indices
from sage_ft_tui.engine.data.inspect import inspect_data
from sage_ft_tui.engine.data.prepare import prepare_run_data
from sage_ft_tui.engine.runs.plan import plan

MAX_LENGTH = 64


def _turns(user: str, answer: str) -> dict:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]}


@pytest.fixture(scope="module")
def mixed_file(tmp_path_factory):
    """40 good rows; one with a tool call tiny-demo's template cannot render (a template
    warning); one whose prompt fills max length (no trained token: dropped); three whose
    answers are cut (EOS lost); one line that is not JSON (a bad row)."""
    rows = [_turns(f"say {i}", f"answer {i}") for i in range(40)]
    rows.append(
        {
            "messages": [
                {"role": "user", "content": "add"},
                {
                    "role": "assistant",
                    "content": "calling",
                    "tool_calls": [{"type": "function", "function": {"name": "add", "arguments": {"a": 1}}}],
                },
                {"role": "tool", "content": "3"},
                {"role": "assistant", "content": "3"},
            ]
        }
    )
    rows.append(_turns("long question " * 80, "short"))
    rows += [_turns("q", "word " * (80 + i)) for i in range(3)]
    p = tmp_path_factory.mktemp("analysis") / "mixed.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{not json\n")
    return p


def test_preview_and_run_creation_report_the_same_findings(mixed_file, tmp_path, tiny_model):
    cfg = RunConfig.from_dict(
        {
            "task": "chat",
            "model": {"name": "tiny-demo"},
            "data": {"paths": [str(mixed_file)], "max_bad_share": 0.1},
            "training": {"max_length": MAX_LENGTH},
        }
    )
    report = prepare_run_data(cfg, tmp_path / "run")
    ins = inspect_data([str(mixed_file)], task="chat", model="tiny-demo", max_length=MAX_LENGTH, max_bad_share=0.1)
    assert ins.ok, ins.error

    counts = report["counts"]
    assert (ins.rows, ins.usable, ins.bad) == (counts["rows"], counts["usable"], counts["skipped"]) == (46, 45, 1)
    assert ins.bad_rows == [(s["where"], s["reason"]) for s in report["skipped"]]
    assert ins.bad_rows[0][0] == f"{mixed_file}:46"
    assert ins.dropped == counts["dropped_no_trained_token"] == 1
    assert counts["train"] + counts["eval"] == counts["usable"] - counts["dropped_no_trained_token"]
    assert plan(cfg, ins).train_rows == counts["train"]  # the Review step plans the rows the run trains

    assert ins.warnings == report["warnings"] and "cannot render tool calls (1 rows)" in ins.warnings[0]
    findings = [(f.kind, f.severity, f.message, f.where) for f in ins.findings]
    assert findings == [(f["kind"], f["severity"], f["message"], f["where"]) for f in report["inspection"]["findings"]]
    assert ("no_trained_token", f"{mixed_file}:42") in [(k, w) for k, _, _, w in findings]
    assert "eos_lost" in [k for k, *_ in findings]
    unpriced = {k: v for k, v in report["inspection"]["truncation"].items() if not k.endswith("_memory")}
    assert ins.truncation == unpriced and unpriced["samples"] == 45

    # the one knob between them: how many rows are measured (the preview may sample)
    few = inspect_data(
        [str(mixed_file)], task="chat", model="tiny-demo", max_length=MAX_LENGTH, max_bad_share=0.1, sample=10
    )
    assert few.truncation["samples"] == 10 and (few.rows, few.bad) == (ins.rows, ins.bad)


def test_the_sample_is_every_row_up_to_the_limit_then_seeded():
    assert sample_indices(5, None) == sample_indices(5, 5) == [0, 1, 2, 3, 4]
    got = sample_indices(1000, 10)
    assert got == sample_indices(1000, 10) == sorted(got) and len(set(got)) == 10
