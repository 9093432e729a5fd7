"""Readers (engine/data/readers.py) and the file-level checks of load_training_data, on real
files in tmp_path: each test fails without its fix."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import socket
import sys
import threading

import pytest

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.data.load import load_training_data
from sage_ft_tui.engine.data.parsers import MAX_JSON_DEPTH
from sage_ft_tui.engine.data.readers import DATA_SUFFIXES, is_data_name, read_files
from sage_ft_tui.engine.errors import SageError


def jsonl(rows) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


ROWS = [{"instruction": f"say {i}", "output": f"answer {i}"} for i in range(30)]


def test_deep_json_row_is_one_bad_row_not_a_recursion_error(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    lines = [json.dumps(r) for r in ROWS[:25]] + ['{"instruction": "x", "output": ' + deep + "}"]
    p = tmp_path / "deep.jsonl"
    p.write_text("\n".join(lines) + "\n")
    got = load_training_data(p, max_bad_share=0.1)
    assert len(got.records) == 25 and len(got.bad) == 1
    assert got.bad[0].where == f"{p}:26" and f"deeper than {MAX_JSON_DEPTH}" in got.bad[0].reason
    # nested just past the limit (json.loads copes, later steps would not): also one bad row
    medium = {
        "instruction": "x",
        "output": "y",
        "z": json.loads("[" * (MAX_JSON_DEPTH + 5) + "]" * (MAX_JSON_DEPTH + 5)),
    }
    p.write_text(jsonl(ROWS[:25]) + json.dumps(medium) + "\n")
    assert "deeper" in load_training_data(p, max_bad_share=0.1).bad[0].reason


def test_deep_json_array_file_is_one_clear_error(tmp_path):
    p = tmp_path / "deep.json"
    p.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(SageError, match="deep.json: JSON nested deeper"):
        read_files([str(p)])


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    done = {}
    t = threading.Thread(target=lambda: done.setdefault("e", _err(lambda: read_files([str(fifo)]))), daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), "reading a FIFO blocked"
    assert "a FIFO (named pipe), not a data file" in done["e"]
    # in a folder, the FIFO is left alone and the regular file read
    (tmp_path / "ok.jsonl").write_text(jsonl(ROWS))
    assert len(read_files([str(tmp_path)]).rows) == 30


def test_socket_and_device_are_refused(tmp_path):
    assert "a device" in _err(lambda: read_files(["/dev/zero"]))
    if sys.platform.startswith("linux"):
        path = tmp_path / "s.jsonl"
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(path))
        try:
            assert "a socket" in _err(lambda: read_files([str(path)]))
        finally:
            s.close()


def _err(fn) -> str:
    try:
        fn()
    except SageError as e:
        return e.oneline()
    return "no error"


@pytest.mark.parametrize(
    "name,pack", [("d.jsonl.gz", gzip.compress), ("d.jsonl.bz2", bz2.compress), ("d.jsonl.xz", lzma.compress)]
)
def test_compressed_files_are_read_transparently(tmp_path, name, pack):
    p = tmp_path / name
    p.write_bytes(pack(jsonl(ROWS).encode()))
    got = load_training_data(p)
    assert len(got.records) == 30 and got.bad == []
    assert got.wheres[0] == f"{p}:1"


def test_a_jsonl_that_is_really_gzip_is_read_and_zip_is_explained(tmp_path):
    p = tmp_path / "liar.jsonl"
    p.write_bytes(gzip.compress(jsonl(ROWS).encode()))
    assert len(load_training_data(p).records) == 30
    z = tmp_path / "z.jsonl"
    z.write_bytes(b"PK\x03\x04" + b"\0" * 40)
    assert "a zip archive, not a data file" in _err(lambda: read_files([str(z)]))
    broken = tmp_path / "b.jsonl.gz"
    broken.write_bytes(gzip.compress(jsonl(ROWS).encode())[:30])
    assert "a broken gzip file" in _err(lambda: read_files([str(broken)]))


def test_suffixes_have_one_owner():
    assert is_data_name("a.JSONL") and is_data_name("x.csv.gz") and is_data_name("t.tsv")
    assert not is_data_name("README.md") and not is_data_name("a.gz")
    from sage_ft_tui.tui.widgets import file_pick

    assert file_pick.is_data_name is is_data_name
    assert ".parquet" in DATA_SUFFIXES


def test_csv_cells_with_unicode_line_separators_and_physical_line_numbers(tmp_path):
    p = tmp_path / "u.csv"
    rows = ["instruction,output"] + [f'"line\u2028sep {i}","next\u0085line"' for i in range(3)]
    rows.insert(2, '"multi\nline question","answer"')
    rows.append('"only one cell"')
    p.write_text("\n".join(rows) + "\n", encoding="utf-8")
    res = read_files([str(p)])
    assert [r.where.rsplit(":", 1)[1] for r in res.rows] == ["2", "3", "5", "6"]
    assert res.rows[0].data["instruction"] == "line\u2028sep 0"
    assert res.bad[0].where == f"{p}:7" and "1 columns" in res.bad[0].reason


def test_csv_duplicate_header_is_refused_naming_it(tmp_path):
    p = tmp_path / "dup.csv"
    p.write_text("instruction,output,output\nq,a,b\n")
    assert "dup.csv:1: the header names column 'output' twice (columns 2 and 3)" in _err(lambda: read_files([str(p)]))


def test_csv_long_cell_and_tsv(tmp_path):
    p = tmp_path / "long.csv"
    p.write_text("instruction,output\nq," + "a" * 200_000 + "\n")
    assert len(read_files([str(p)]).rows) == 1
    t = tmp_path / "t.tsv"
    t.write_text("instruction\toutput\nq, with comma\ta\n")
    assert read_files([str(t)]).rows[0].data == {"instruction": "q, with comma", "output": "a"}


def test_folder_file_detected_on_its_own_and_unusable_file_named(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    (d / "a.jsonl").write_text(jsonl(ROWS * 4))
    (d / "b.jsonl").write_text(jsonl([{"question": "q?", "answer": "a"}] * 3))  # another format: fine
    got = load_training_data(d)
    assert len(got.records) == 123 and got.formats == {str(d / "a.jsonl"): "alpaca", str(d / "b.jsonl"): "qa"}
    (d / "c.jsonl").write_text(jsonl([{"foo": 1}] * 2))  # 2 of 125 rows, under 5%: still an error naming it
    assert "c.jsonl: cannot tell the data format" in _err(lambda: load_training_data(d))
    (d / "c.jsonl").write_text("not json\n")
    assert "c.jsonl: no usable rows" in _err(lambda: load_training_data(d))


def test_same_file_twice_is_read_once_and_copies_stay_on_one_side(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_text(jsonl(ROWS))
    got = load_training_data([str(p), str(p)])
    assert len(got.records) == 30 and any(f.kind == "same_file_twice" for f in got.findings)
    copy = tmp_path / "copy.jsonl"
    copy.write_text(p.read_text())
    got = load_training_data([str(p), str(copy)])
    assert got.duplicates == 30 and any(f.kind == "duplicates" for f in got.findings)
    from sage_ft_tui.engine.data.split import split

    train, ev = split(got.records, 0.3, 0, got.groups)
    assert ev and not ({json.dumps(r) for r in train} & {json.dumps(r) for r in ev})


def test_permission_error_is_one_line_naming_the_file(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    p = tmp_path / "locked.jsonl"
    p.write_text(jsonl(ROWS))
    p.chmod(0)
    assert f"cannot read data file {p}: permission denied" in _err(lambda: read_files([str(p)]))


def test_set_into_dict_fields_and_unknown_keys_elsewhere():
    cfg = RunConfig().with_overrides(["data.field_map.question=q", "data.replace.name=007", "lora.r=8"])
    assert cfg.data.field_map == {"question": "q"} and cfg.data.replace == {"name": "007"} and cfg.lora.r == 8
    for bad in ("lora.nope=1", "data.nope.x=1", "data.field_mapp.question=q"):
        with pytest.raises(SageError, match="unknown key"):
            RunConfig().with_overrides([bad])
