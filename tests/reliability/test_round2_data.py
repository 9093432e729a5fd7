"""Round two, data (issue 21, item 3 and the data part of the misc list): readers that
never merge or drop rows silently, and counts that agree wherever they are shown.

Outside-style inputs written for this round: CSV/TSV with an unbalanced quote mid-file, a
quote never closed, two stray quotes that join two rows, valid quoted cells holding line
breaks and commas, a BOM with mixed line endings, a quote at the very last byte; JSON
lines and plain text with bare-CR line ends; a parquet file with nested columns; a
field_map to a column that is not there; a folder mixing formats; 20,000-character keys;
preference pairs that differ only in whitespace; KTO rows of one label; placeholders
no row uses. The file-level cases read through the engine (`read_files`,
`load_training_data`, `inspect_data`); the rest through the real `sage-ft-tui start`."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sage_ft_tui.engine.data.load import load_training_data
from sage_ft_tui.engine.data.readers import read_files
from sage_ft_tui.engine.errors import SageError

from .conftest import cli, one_error_line

Q = "question,answer\n"


def _read(tmp_path: Path, name: str, text: str | bytes):
    f = tmp_path / name
    f.write_bytes(text if isinstance(text, bytes) else text.encode())
    res = read_files([str(f)])
    return (
        f,
        [(r.where.rsplit(":", 1)[1], r.data) for r in res.rows],
        [(b.where.rsplit(":", 1)[1], b.reason) for b in res.bad],
    )


# ---- CSV / TSV quoting ------------------------------------------------------------------


def test_csv_unbalanced_quote_mid_file_is_a_bad_row_not_a_merge(tmp_path):
    # line 2 opens a quote that a later, valid quoted cell closes: the old reader merged
    # lines 2-3 into one row ("2 rows · 0 bad" for 3 rows)
    _, rows, bad = _read(tmp_path, "q.csv", Q + 'What is 1?,"one\nWhat is 2?,"two"\nWhat is 3?,three\n')
    assert bad and bad[0][0] == "2" and "quote" in bad[0][1], bad
    assert rows == [
        ("3", {"question": "What is 2?", "answer": "two"}),
        ("4", {"question": "What is 3?", "answer": "three"}),
    ]


def test_tsv_unbalanced_quote_mid_file(tmp_path):
    text = 'question\tanswer\nWhat is 1?\t"one\nWhat is 2?\t"two"\nWhat is 3?\tthree\n'
    _, rows, bad = _read(tmp_path, "q.tsv", text)
    assert [w for w, _ in bad] == ["2"] and "not valid TSV" in bad[0][1]
    assert [w for w, _ in rows] == ["3", "4"]


def test_compressed_csv_is_read_the_same_way(tmp_path):
    import gzip

    text = Q + 'What is 1?,"one\nWhat is 2?,"two"\nWhat is 3?,three\n'
    _, rows, bad = _read(tmp_path, "q.csv.gz", gzip.compress(text.encode()))
    assert [w for w, _ in bad] == ["2"] and [w for w, _ in rows] == ["3", "4"]


def test_csv_quote_never_closed_on_the_last_row(tmp_path):
    # the old reader took the open cell to the end of the file as text ("three\n"): 3 rows, 0 bad
    _, rows, bad = _read(tmp_path, "last.csv", Q + 'What is 1?,one\nWhat is 2?,two\nWhat is 3?,"three\n')
    assert bad == [("4", bad[0][1])] and "never closed" in bad[0][1]
    assert [w for w, _ in rows] == ["2", "3"]


def test_csv_quote_never_closed_mid_file_keeps_the_rows_after_it(tmp_path):
    # the old reader swallowed lines 3-5 into one cell of one bad row: two good rows vanished
    _, rows, bad = _read(
        tmp_path, "mid.csv", Q + 'What is 1?,one\n"What is 2?,two\nWhat is 3?,three\nWhat is 4?,four\n'
    )
    assert [w for w, _ in bad] == ["3"]
    assert [w for w, _ in rows] == ["2", "4", "5"]


def test_csv_two_stray_quotes_joining_two_rows(tmp_path):
    # valid CSV on its face, but each line of the joined cell is a row of its own
    _, rows, bad = _read(tmp_path, "join.csv", Q + 'What is 1?,one\n"What is 2?,two\nWhat is 3?",three\n')
    assert [w for w, _ in bad] == ["3"] and "lines 3-4 read as one record" in bad[0][1]
    assert [w for w, _ in rows][0] == "2"


def test_csv_quoted_cells_with_line_breaks_and_commas_are_valid(tmp_path):
    text = (
        Q
        + 'What is 1?,"one\nand more, yes"\nCode?,"x = 1\ny = f(a, b)"\n"Say ""hi""","Hello, there"\nWhat is 3?,three\n'
    )
    _, rows, bad = _read(tmp_path, "ok.csv", text)
    assert bad == []
    assert rows == [
        ("2", {"question": "What is 1?", "answer": "one\nand more, yes"}),
        ("4", {"question": "Code?", "answer": "x = 1\ny = f(a, b)"}),
        ("6", {"question": 'Say "hi"', "answer": "Hello, there"}),
        ("7", {"question": "What is 3?", "answer": "three"}),
    ]


def test_csv_bom_and_mixed_line_endings(tmp_path):
    text = '\ufeffquestion,answer\r\nWhat is 1?,one\rWhat is 2?,two\nWhat is 3?,"th\r\nree"\r\nWhat is 4?,four'
    _, rows, bad = _read(tmp_path, "mixed.csv", text)
    assert bad == []
    assert [w for w, _ in rows] == ["2", "3", "4", "6"]
    assert rows[0][1] == {"question": "What is 1?", "answer": "one"} and rows[2][1]["answer"] == "th\r\nree"


def test_csv_quote_at_the_last_byte(tmp_path):
    _, rows, bad = _read(tmp_path, "lastbyte.csv", Q + 'What is 1?,one\nWhat is 2?,"two"')
    assert bad == [] and rows[-1] == ("3", {"question": "What is 2?", "answer": "two"})
    _, rows, bad = _read(tmp_path, "lastbyte2.csv", Q + 'What is 1?,one\nWhat is 2?,"')
    assert [w for w, _ in bad] == ["3"] and [w for w, _ in rows] == ["2"]


# ---- the other readers ------------------------------------------------------------------


def test_jsonl_with_bare_cr_line_ends_is_one_row_a_line(tmp_path):
    rows_in = [{"question": f"q{i}", "answer": f"a{i}"} for i in range(3)]
    data = "\r".join(json.dumps(r) for r in rows_in) + "\r\n" + json.dumps({"question": "q3", "answer": "a3"}) + "\n"
    _, rows, bad = _read(tmp_path, "cr.jsonl", data)
    assert bad == [] and [w for w, _ in rows] == ["1", "2", "3", "4"]  # the old reader: 1 bad row for 3 good ones


def test_txt_with_bare_cr_line_ends_keeps_its_paragraphs(tmp_path):
    _, rows, bad = _read(tmp_path, "old_mac.txt", "First paragraph.\r\rSecond one.\rstill second.\r\rThird.\r")
    assert [d["text"] for _, d in rows] == ["First paragraph.", "Second one.\nstill second.", "Third."]
    assert [w for w, _ in rows] == ["1", "3", "6"]


def test_parquet_with_nested_columns(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    f = tmp_path / "nested.parquet"
    msgs = [[{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}] for i in range(3)]
    pq.write_table(pa.table({"messages": msgs, "meta": [{"src": "x", "n": i} for i in range(3)]}), f)
    loaded = load_training_data([str(f)], task="chat")
    assert loaded.format == "messages" and len(loaded.records) == 3 and not loaded.bad
    g = tmp_path / "struct_answer.parquet"
    pq.write_table(pa.table({"question": ["q0", "q1"], "answer": [{"text": "a0"}, {"text": "a1"}]}), g)
    with pytest.raises(SageError) as e:
        load_training_data([str(g)], task="qa")
    assert "struct_answer.parquet:row 1" in str(e.value) and "field 'answer' is dict" in str(e.value)


def test_field_map_to_a_missing_column_is_refused_with_the_columns(tmp_path):
    f = tmp_path / "qa.csv"
    f.write_text(Q + "What is 1?,one\nWhat is 2?,two\n")
    with pytest.raises(SageError) as e:  # the old loader ignored the map and trained on `question`
        load_training_data([str(f)], task="qa", field_map={"question": "Question"})
    msg = str(e.value)
    assert "data.field_map.question names column 'Question'" in msg and "columns: answer, question" in msg


def test_counts_agree_when_the_last_row_is_broken(tmp_path):
    from sage_ft_tui.engine.data.inspect import inspect_data

    f = tmp_path / "broken_last.csv"
    f.write_text(Q + "What is 1?,one\nWhat is 2?,two\nWhat is 3?\n")
    ins = inspect_data([str(f)], task="qa")
    assert ins.error is not None and "1 of 3 rows are bad" in ins.error.message
    # the old inspection said "3 rows · 3 bad · 0 usable" beside that line
    assert (ins.rows, ins.bad, ins.usable) == (3, 1, 2)


# ---- through the real CLI ---------------------------------------------------------------


def _gen(t: Path) -> dict[str, list[str]]:
    """Each case's `start` arguments; the files are written into the case's folder t."""
    cases: dict[str, list[str]] = {}
    mix = t / "mixed_folder"
    mix.mkdir()
    (mix / "a_alpaca.jsonl").write_text(
        "".join(json.dumps({"instruction": f"Say {i}", "output": f"{i}"}) + "\n" for i in range(12))
    )
    (mix / "b_qa.csv").write_text(Q + "".join(f"What is {i}?,{i}\n" for i in range(8)))
    cases["mixed_folder"] = ["--data", str(mix), "--task", "instruction"]
    one_bad = t / "one_bad.jsonl"
    rows = [json.dumps({"instruction": f"Say {i}", "output": f"{i}"}) for i in range(29)]
    one_bad.write_text("\n".join(rows[:10] + ['{"instruction": "torn'] + rows[10:]) + "\n")
    cases["one_bad_row"] = ["--data", str(one_bad), "--task", "instruction"]
    long_keys = t / "long_keys.jsonl"
    long_keys.write_text("".join(json.dumps({"k" * 20000 + str(i): "v", "x" * 20000: "y"}) + "\n" for i in range(5)))
    cases["long_keys"] = ["--data", str(long_keys)]
    long_role = t / "long_role.jsonl"
    msgs = [{"role": "r" * 20000, "content": "hi"}, {"role": "assistant", "content": "yo"}]
    long_role.write_text("".join(json.dumps({"messages": msgs}) + "\n" for _ in range(5)))
    cases["long_role"] = ["--data", str(long_role), "--task", "chat"]
    ws = t / "ws_pairs.jsonl"
    ws.write_text(
        "".join(
            json.dumps({"prompt": f"Q{i}?", "chosen": f"The answer is {i}.", "rejected": f"The  answer is {i}. "})
            + "\n"
            for i in range(6)
        )
    )
    cases["whitespace_pairs"] = ["--data", str(ws), "--task", "preference"]
    ws_some = t / "ws_some.jsonl"
    good = [json.dumps({"prompt": f"Q{i}?", "chosen": f"Yes {i}.", "rejected": f"No {i}."}) for i in range(30)]
    ws_some.write_text("\n".join(good + [json.dumps({"prompt": "Q?", "chosen": "Yes.", "rejected": "Yes.\n"})]) + "\n")
    cases["whitespace_pair_one"] = ["--data", str(ws_some), "--task", "preference"]
    kto = t / "kto_all_good.jsonl"
    kto.write_text(
        "".join(json.dumps({"prompt": f"Q{i}?", "completion": f"A{i}.", "label": True}) + "\n" for i in range(8))
    )
    cases["kto_one_label"] = ["--data", str(kto), "--task", "preference"]
    ph = t / "placeholders.jsonl"
    ph.write_text(
        "".join(json.dumps({"instruction": f"Hi {{{{name}}}} {i}", "output": "Hello."}) + "\n" for i in range(8))
    )
    cases["replace_unused"] = ["--data", str(ph), "--set", "data.replace.nmae=Bob", "--set", "data.replace.name=Ann"]
    return cases


@pytest.fixture(scope="module")
def started(tmp_path_factory, tiny_model) -> dict:
    t = tmp_path_factory.mktemp("round2data")
    cases = _gen(t)

    def run(item):
        cid, args = item
        home = t / "runs" / cid
        p = cli("start", *args, "--model", "tiny-demo", "--no-tui", env={"SAGE_FT_HOME": str(home)}, timeout=300)
        runs = [d for d in home.iterdir() if d.is_dir()] if home.exists() else []
        report = json.loads((runs[0] / "data" / "data_report.json").read_text()) if runs else None
        return cid, (p, report)

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(pool.map(run, cases.items()))


def test_a_folder_reports_each_file(started):
    p, report = started["mixed_folder"]
    assert p.returncode == 0, p.stderr[-2000:]
    per = {Path(x["file"]).name: x for x in report["per_file"]}
    assert per["a_alpaca.jsonl"] == {**per["a_alpaca.jsonl"], "format": "alpaca", "rows": 12, "bad": 0, "usable": 12}
    assert per["b_qa.csv"] == {**per["b_qa.csv"], "format": "qa", "rows": 8, "bad": 0, "usable": 8}
    assert "a_alpaca.jsonl: alpaca, 12 rows, 0 bad, 12 usable" in p.stdout
    assert "b_qa.csv: qa, 8 rows, 0 bad, 8 usable" in p.stdout
    assert "the files hold different formats" in p.stderr
    c = report["counts"]
    assert c["rows"] == c["usable"] + c["skipped"] + c["over_max_samples"] == sum(x["rows"] for x in report["per_file"])


def test_skipped_rows_are_named_with_file_and_line(started):
    p, report = started["one_bad_row"]
    assert p.returncode == 0, p.stderr[-2000:]
    assert "1 bad rows skipped" in p.stdout or "1 bad row" in p.stdout
    line = [ln for ln in p.stderr.splitlines() if "bad row skipped" in ln]
    assert line and "one_bad.jsonl:11: " in line[0], p.stderr  # the README's promise: the row's file:line
    assert report["counts"]["rows"] == 30 and report["counts"]["skipped"] == 1 and report["counts"]["usable"] == 29


@pytest.mark.parametrize("case", ["long_keys", "long_role"])
def test_twenty_thousand_character_keys_give_a_short_line(started, case):
    p, _ = started[case]
    err = one_error_line(p)
    assert len(err) < 600, len(err)  # the old line was 40 KB
    assert "characters)" in err


def test_pairs_that_differ_only_in_whitespace(started):
    p, _ = started["whitespace_pairs"]
    err = one_error_line(p)
    assert "differ only in whitespace" in err and "ws_pairs.jsonl:1" in err
    p, report = started["whitespace_pair_one"]
    assert p.returncode == 0, p.stderr[-2000:]
    assert report["skipped"] == [{"where": report["skipped"][0]["where"], "reason": report["skipped"][0]["reason"]}]
    assert report["skipped"][0]["where"].endswith("ws_some.jsonl:31") and "whitespace" in report["skipped"][0]["reason"]


def test_kto_rows_of_one_label_are_warned(started):
    p, _ = started["kto_one_label"]
    assert p.returncode == 0, p.stderr[-2000:]
    assert "all 8 rows are desirable (label true)" in p.stderr and "label false" in p.stderr


def test_replace_keys_no_row_uses_are_warned(started):
    p, _ = started["replace_unused"]
    assert p.returncode == 0, p.stderr[-2000:]
    assert "data.replace: no row holds {{nmae}}" in p.stderr
    assert "{{name}}" not in p.stderr.split("no row holds")[1].split("—")[0]
