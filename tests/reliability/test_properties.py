"""Property-based tests (hypothesis) for the format detector and the event reader.

Format detector (engine/data/formats.py): a row built in any format, with any text, any extra
columns and any key order, is detected as that format and normalised without losing its
text; arbitrary JSON never raises anything but RowError; whole files written as .jsonl
round-trip through the real reader, with bad rows named by line.

Event reader (engine/runs/events.py): any byte split of a valid stream yields the same events
through parse_chunk and through EventFollower fed in pieces; garbage and torn lines are
skipped and counted, never fatal."""

from __future__ import annotations

import json
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sage_ft_tui.engine.data.formats import RowError, detect_format, normalize, row_format
from sage_ft_tui.engine.data.readers import read_files
from sage_ft_tui.engine.data.rows import Row
from sage_ft_tui.engine.runs.events import EventFollower, parse_chunk, read_events

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40).filter(
    lambda s: s.strip()
)
# Column names that are not any format's own field.
OWN = {
    "conversations",
    "messages",
    "instruction",
    "output",
    "input",
    "question",
    "answer",
    "prompt",
    "completion",
    "text",
    "content",
    "system",
    "history",
    "context",
    "tools",
}
extra_key = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=10).filter(lambda k: k not in OWN)
extras = st.dictionaries(extra_key, st.one_of(st.integers(), text, st.none()), max_size=3)


@st.composite
def rows(draw):
    """(format, row dict, the texts that must survive normalisation)."""
    fmt = draw(st.sampled_from(["alpaca", "qa", "prompt_completion", "sharegpt", "messages", "text"]))
    if fmt == "alpaca":
        a, b = draw(text), draw(text)
        d, keep = {"instruction": a, "output": b}, [a, b]
        if draw(st.booleans()):
            d["input"] = draw(text)
            keep.append(d["input"])
    elif fmt == "qa":
        a, b = draw(text), draw(text)
        d, keep = {"question": a, "answer": b}, [a, b]
    elif fmt == "prompt_completion":
        a, b = draw(text), draw(text)
        d, keep = {"prompt": a, "completion": b}, [a, b]
    elif fmt == "text":
        a = draw(text)
        d, keep = {draw(st.sampled_from(["text", "content"])): a}, [a]
    else:
        n = draw(st.integers(1, 3))
        turns = [(draw(text), draw(text)) for _ in range(n)]
        keep = [t for pair in turns for t in pair]
        if fmt == "sharegpt":
            d = {
                "conversations": [
                    x for u, a in turns for x in ({"from": "human", "value": u}, {"from": "gpt", "value": a})
                ]
            }
        else:
            d = {
                "messages": [
                    x for u, a in turns for x in ({"role": "user", "content": u}, {"role": "assistant", "content": a})
                ]
            }
    d.update(draw(extras))
    items = list(d.items())
    order = draw(st.permutations(range(len(items))))
    return fmt, {items[i][0]: items[i][1] for i in order}, keep


@SETTINGS
@given(rows())
def test_any_row_is_detected_as_its_format_and_keeps_its_text(r):
    fmt, d, keep = r
    assert row_format(d) == fmt
    rec = normalize(d, fmt)
    blob = rec["text"] if "text" in rec else "\n".join(m["content"] for m in rec["messages"])
    for t in keep:
        assert t in blob
    if "messages" in rec:
        assert rec["messages"][-1]["role"] == "assistant"


@SETTINGS
@given(st.lists(rows(), min_size=1, max_size=30), st.data())
def test_detect_format_picks_the_majority(batch, data):
    fmt = batch[0][0]
    same = [Row(f"f:{i}", d) for i, (f, d, _) in enumerate(batch) if f == fmt]
    noise = [
        Row("x", v) for v in data.draw(st.lists(st.one_of(st.integers(), st.text(), st.none()), max_size=len(same) - 1))
    ]
    got, counts = detect_format(same + noise)
    assert got == fmt and counts[fmt] == len(same)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(sorted(OWN) + ["x", "from", "value", "role"]), inner, max_size=5),
    ),
    max_leaves=15,
)


@SETTINGS
@given(json_values, st.sampled_from(["alpaca", "qa", "prompt_completion", "sharegpt", "messages", "text"]))
def test_arbitrary_json_only_ever_raises_rowerror(v, fmt):
    f = row_format(v)
    assert f is None or isinstance(f, str)
    try:
        rec = normalize(v, fmt)
    except RowError as e:
        assert str(e)
    else:
        assert ("text" in rec) != ("messages" in rec)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(rows(), min_size=1, max_size=15), st.sets(st.integers(0, 14), max_size=3), st.booleans(), st.booleans())
def test_jsonl_files_round_trip_with_bad_lines_named(tmp_path_factory, batch, bad_at, crlf, bom):
    path = tmp_path_factory.mktemp("p") / "d.jsonl"
    lines, bad_lines = [], []
    for i, (_, d, _) in enumerate(batch):
        if i in bad_at:
            lines.append(b'{"instruction": "torn')
            bad_lines.append(len(lines))
        lines.append(json.dumps(d, ensure_ascii=False).encode())
    nl = b"\r\n" if crlf else b"\n"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + nl.join(lines) + nl)
    res = read_files([str(path)])
    assert [r.data for r in res.rows] == [d for _, d, _ in batch]
    assert [b.where for b in res.bad] == [f"{path}:{n}" for n in bad_lines]
    assert [r.where for r in res.rows] == [f"{path}:{i + 1}" for i in range(len(lines)) if i + 1 not in bad_lines]


# ---- the event reader ----------------------------------------------------------------

scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
events = st.lists(
    st.fixed_dictionaries(
        {
            "v": st.just(1),
            "t": st.floats(0, 2e9, allow_nan=False),
            "kind": st.sampled_from(["start", "log", "eval", "hw", "checkpoint", "status", "error", "future"]),
        },
        optional={
            "step": st.integers(0, 10**6),
            "loss": scalar,
            "message": st.text(max_size=50),
            "nested": st.dictionaries(st.text(max_size=5), scalar, max_size=3),
        },
    ),
    max_size=25,
)


def _stream(evs: list[dict]) -> bytes:
    return b"".join(json.dumps(e, ensure_ascii=False).encode() + b"\n" for e in evs)


@SETTINGS
@given(events, st.data())
def test_any_byte_split_yields_the_same_events(evs, data):
    blob = _stream(evs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(blob)), max_size=8)))
    got, pending, line = [], b"", 1
    for a, b in zip([0] + cuts, cuts + [len(blob)]):
        pending += blob[a:b]
        batch, used = parse_chunk(pending, line)
        assert not batch.skipped
        got += batch.events
        line += pending[:used].count(b"\n")
        pending = pending[used:]
    assert pending == b"" and got == evs


@SETTINGS
@given(events, st.data())
def test_follower_fed_in_pieces_sees_every_event_once(tmp_path_factory, evs, data):
    path = tmp_path_factory.mktemp("ev") / "events.jsonl"
    path.write_bytes(b"")
    blob = _stream(evs)
    cuts = sorted(set(data.draw(st.lists(st.integers(0, len(blob)), max_size=8))))
    f, got = EventFollower(path), []
    for a, b in zip([0] + cuts, cuts + [len(blob)]):
        with open(path, "ab") as fh:
            fh.write(blob[a:b])
        got += f.poll(max_bytes=data.draw(st.integers(1, 4096)))
    for _ in range(len(blob) + 1):  # small max_bytes: drain what is left
        more = f.poll()
        if not more:
            break
        got += more
    assert got == evs and not f.skipped


@SETTINGS
@given(events, st.lists(st.binary(max_size=40).filter(lambda b: b"\n" not in b), max_size=4), st.data())
def test_garbage_lines_are_skipped_and_counted(evs, junk, data):
    lines = [json.dumps(e).encode() for e in evs]
    for j in junk:
        at = data.draw(st.integers(0, len(lines)))
        lines.insert(at, j)
    blob = b"\n".join(lines) + b"\n"
    batch, used = parse_chunk(blob)
    assert used == len(blob)
    good = [e for e in batch.events]
    # every real event survives, in order; junk is either skipped or (if it happens to be
    # a valid event object) passed through; nothing raises
    it = iter(good)
    assert all(any(e == g for g in it) for e in evs)
    assert len(batch.events) + len(batch.skipped) == sum(1 for ln in lines if ln.strip())


@SETTINGS
@given(events, st.binary(min_size=1, max_size=30).filter(lambda b: b"\n" not in b and b.strip()))
def test_torn_tail_at_rest_is_named(tmp_path_factory, evs, tail):
    path = tmp_path_factory.mktemp("torn") / "events.jsonl"
    path.write_bytes(_stream(evs) + tail)
    res = read_events(path)
    assert res.events == evs
    assert res.skipped and res.skipped[-1].reason == "torn last line" and res.skipped[-1].line == len(evs) + 1
