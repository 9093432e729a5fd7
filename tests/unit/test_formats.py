import json

import pytest

from sage_ft_tui.engine.data.load import load_training_data
from sage_ft_tui.engine.errors import SageError


def write(tmp_path, name, content, mode="w"):
    p = tmp_path / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content, encoding="utf-8")
    return p


def jsonl(rows):
    return "".join(json.dumps(r) + "\n" for r in rows)


def test_every_bundled_format_is_detected(sample_data):
    want = {
        "instruction": "alpaca",
        "qa": "qa",
        "chat": "messages",
        "sharegpt": "sharegpt",
        "prompt_completion": "prompt_completion",
        "text": "text",
    }
    for key, fmt in want.items():
        task = "text" if fmt == "text" else "chat"
        got = load_training_data(sample_data[key], task=task)
        assert got.format == fmt and not got.bad and got.records


def test_alpaca_with_system_history_and_input(tmp_path):
    p = write(
        tmp_path,
        "a.jsonl",
        jsonl(
            [{"instruction": "Add", "input": "1 2", "output": "3", "system": "Be terse.", "history": [["hi", "hello"]]}]
        ),
    )
    msgs = load_training_data(p).records[0]["messages"]
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user", "assistant"]
    assert msgs[3]["content"] == "Add\n\n1 2" and msgs[4]["content"] == "3"


def test_sharegpt_roles_and_tools(tmp_path):
    row = {
        "conversations": [
            {"from": "system", "value": "s"},
            {"from": "human", "value": "q"},
            {"from": "function_call", "value": '{"name": "f"}'},
            {"from": "observation", "value": "42"},
            {"from": "gpt", "value": "a"},
        ],
        "tools": '[{"name": "f"}]',
    }
    rec = load_training_data(write(tmp_path, "s.json", json.dumps([row])), task="chat").records[0]
    assert [m["role"] for m in rec["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
    assert json.loads(rec["tools"]) == [{"name": "f"}]


def test_openai_content_parts(tmp_path):
    row = {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "he"}, {"type": "text", "text": "llo"}]},
            {"role": "assistant", "content": "hi"},
        ]
    }
    rec = load_training_data(write(tmp_path, "m.jsonl", jsonl([row])), task="chat").records[0]
    assert rec["messages"][0]["content"] == "hello"


def test_bad_rows_report_file_line_and_reason(tmp_path):
    rows = [{"instruction": f"q{i}", "output": f"a{i}"} for i in range(40)]
    text = jsonl(rows[:10]) + '{"instruction": "x"}\n' + jsonl(rows[10:20]) + "{not json\n" + jsonl(rows[20:])
    p = write(tmp_path, "d.jsonl", text)
    got = load_training_data(p, max_bad_share=0.1)
    assert len(got.records) == 40
    where = {b.where: b.reason for b in got.bad}
    assert where[f"{p}:11"] == "missing field 'output'"
    assert where[f"{p}:22"].startswith("not valid JSON")


def test_too_many_bad_rows_stop_with_the_first(tmp_path):
    p = write(
        tmp_path,
        "d.jsonl",
        jsonl(
            [{"instruction": "q", "output": "a"}, {"instruction": "q"}, {"instruction": "q", "output": 5.5}]
            + [{"instruction": "q", "output": ["x"]}]
        ),
    )
    with pytest.raises(SageError) as ei:
        load_training_data(p)
    msg = ei.value.oneline()
    assert "2 of 4 rows are bad" in msg and f"{p}:2" in msg and "max_bad_share" in msg


@pytest.mark.parametrize(
    "content, words",
    [
        ("", ["no rows"]),
        ("   \n\n", ["no rows"]),
        (b'{"instruction": "\xff\xfe", "output": "a"}\n', ["not valid UTF-8", ":1"]),
        ('{"foo": 1}\n{"bar": 2}\n', ["cannot tell the data format", "foo"]),
        ("[1, 2, 3]\n", ["cannot tell the data format"]),
    ],
)
def test_unusable_jsonl(tmp_path, content, words):
    p = write(tmp_path, "x.jsonl", content)
    with pytest.raises(SageError) as ei:
        load_training_data(p, max_bad_share=0.0)
    for w in words:
        assert w in ei.value.oneline()


def test_torn_last_line_is_skipped_and_named(tmp_path):
    rows = [{"question": f"q{i}", "answer": f"a{i}"} for i in range(30)]
    p = write(tmp_path, "t.jsonl", jsonl(rows) + '{"question": "q", "ans')
    got = load_training_data(p, task="qa")
    assert len(got.records) == 30
    assert got.bad[0].where == f"{p}:31" and "torn last line" in got.bad[0].reason


def test_json_object_instead_of_list(tmp_path):
    p = write(tmp_path, "o.json", json.dumps({"instruction": "q", "output": "a"}))
    with pytest.raises(SageError, match="a JSON object, not a list of rows"):
        load_training_data(p)


def test_wrong_types_are_bad_rows(tmp_path):
    rows = [{"question": "q", "answer": "a"}] * 30 + [{"question": {"x": 1}, "answer": "a"}]
    got = load_training_data(write(tmp_path, "w.jsonl", jsonl(rows)), task="qa")
    assert got.bad[0].reason == "field 'question' is dict, expected text"


def test_csv_rows_bom_crlf_and_nan(tmp_path):
    body = "\ufeffprompt,completion\r\n" + "".join(f"p{i},c{i}\r\n" for i in range(30)) + "p,NaN\r\n"
    p = write(tmp_path, "c.csv", body)
    got = load_training_data(p)
    assert got.format == "prompt_completion" and len(got.records) == 30
    assert got.bad[0].where == f"{p}:32" and "completion" in got.bad[0].reason


def test_folder_of_files_and_empty_folder(tmp_path, sample_data):
    d = tmp_path / "data"
    d.mkdir()
    with pytest.raises(SageError, match="holds no data files"):
        load_training_data(d)
    (d / "a.jsonl").write_text(sample_data["instruction"].read_text())
    (d / "b.jsonl").write_text(sample_data["instruction"].read_text())
    assert len(load_training_data(d).files) == 2


def test_text_for_qa_task_is_refused(sample_data):
    with pytest.raises(SageError, match="plain text has no answers"):
        load_training_data(sample_data["text"], task="qa")


def test_field_map_renames_columns(tmp_path):
    p = write(tmp_path, "f.jsonl", jsonl([{"q": "x", "a": "y"}] * 3))
    got = load_training_data(p, task="qa", field_map={"question": "q", "answer": "a"})
    assert got.format == "qa" and got.records[0]["messages"][-1]["content"] == "y"


def test_missing_path(tmp_path):
    with pytest.raises(SageError, match="does not exist"):
        load_training_data(tmp_path / "nope.jsonl")


def test_split_is_deterministic_and_keeps_groups_together():
    from sage_ft_tui.engine.data.split import split

    recs = [{"text": str(i)} for i in range(40)]
    a = split(recs, 0.25, 7)
    assert a == split(recs, 0.25, 7) and len(a[1]) == 10 and len(a[0]) == 30
    groups = [f"f{i // 4}" for i in range(40)]
    tr, ev = split(recs, 0.2, 7, groups)
    ev_groups = {groups[int(r["text"])] for r in ev}
    assert ev_groups and not ev_groups & {groups[int(r["text"])] for r in tr}
