from sage_ft_tui.engine.runs.events import EventFollower, EventWriter, read_events


def test_writer_and_reader_roundtrip(tmp_path):
    w = EventWriter(tmp_path / "e.jsonl")
    w.emit("start", total_steps=3)
    w.emit("log", step=1, loss=1.5)
    w.close()
    b = read_events(tmp_path / "e.jsonl")
    assert [e["kind"] for e in b.events] == ["start", "log"] and not b.skipped
    assert all(e["v"] == 1 and "t" in e for e in b.events)


def test_torn_last_line_garbage_and_unknown_kinds(tmp_path):
    p = tmp_path / "e.jsonl"
    p.write_text('{"v":1,"kind":"start"}\nGARBAGE\n{"v":1,"kind":"future_kind","x":1}\n[1,2]\n{"v":1,"kind":"log","st')
    b = read_events(p)
    assert [e["kind"] for e in b.events] == ["start", "future_kind"]
    assert [(s.line, s.reason) for s in b.skipped] == [
        (2, "not valid JSON"),
        (4, "not an event object"),
        (5, "torn last line"),
    ]


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    assert read_events(tmp_path / "empty.jsonl").events == []
    assert read_events(tmp_path / "missing.jsonl").events == []


def test_follower_reads_only_complete_lines(tmp_path):
    p = tmp_path / "e.jsonl"
    f = EventFollower(p)
    assert f.poll() == []
    with open(p, "a") as fh:
        fh.write('{"kind":"a"}\n{"kind":"b"')
    assert [e["kind"] for e in f.poll()] == ["a"]
    with open(p, "a") as fh:
        fh.write(',"x":1}\n')
    assert f.poll() == [{"kind": "b", "x": 1}]
    assert f.poll() == []


def test_writer_after_a_torn_line_starts_on_a_new_line(tmp_path):
    p = tmp_path / "e.jsonl"
    p.write_text('{"kind":"log","step":1}\n{"kind":"lo')
    w = EventWriter(p)
    w.emit("status", state="running")
    w.close()
    b = read_events(p)
    assert [e["kind"] for e in b.events] == ["log", "status"] and len(b.skipped) == 1


def test_fast_replay_path_matches_the_tolerant_reader(tmp_path):
    p = tmp_path / "events.jsonl"
    p.write_text('{"kind":"log","step":1}\n{"kind":"log","step":2}\n')
    f = EventFollower(p)
    assert [e["step"] for e in f.poll()] == [1, 2]
    with open(p, "a") as fh:
        fh.write('garbage\n{"kind":"eval","step":2}\n{"kind":"lo')  # bad line + torn tail
    assert [e["kind"] for e in f.poll()] == ["eval"]
    assert f.skipped[0].line == 3
    with open(p, "a") as fh:
        fh.write('g","step":3}\n')
    assert [e["step"] for e in f.poll()] == [3]
