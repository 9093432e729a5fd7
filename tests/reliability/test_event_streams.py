"""Torn, corrupt and empty event streams: `sage-ft-tui attach RUN --no-tui` (JSON lines and
the Rich view) still works, shows every readable event, and says what it skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.runs.create import create_run
from sage_ft_tui.engine.runs.state import write_status

from .conftest import cli


def _stream(n_logs=12) -> list[dict]:
    evs = [
        {"v": 1, "t": 1.0, "kind": "status", "state": "preparing"},
        {"v": 1, "t": 2.0, "kind": "start", "total_steps": n_logs, "resumed_from_step": 0},
    ]
    evs += [
        {"v": 1, "t": 3.0 + i, "kind": "log", "step": i + 1, "loss": 5.0 - i * 0.1, "learning_rate": 1e-3}
        for i in range(n_logs)
    ]
    evs += [{"v": 1, "t": 99.0, "kind": "status", "state": "completed", "step": n_logs}]
    return evs


def _run(sage_home: Path, name: str, body: bytes | None, state="completed") -> Path:
    run = create_run(RunConfig.from_dict({"name": name, "task": "qa", "data": {"paths": ["x.jsonl"]}}), prepare=False)
    write_status(run, state=state, step=12, total_steps=12, exit_reason="" if state == "completed" else "disk: full")
    if body is not None:
        (run / "events.jsonl").write_bytes(body)
    return run


def _lines(evs):
    return [json.dumps(e).encode() for e in evs]


CASES = {
    # name: (bytes, events expected, words in the skipped note)
    "torn_last_line": (
        b"\n".join(_lines(_stream())) + b'\n{"v":1,"t":100,"kind":"lo',
        15,
        ["1 unreadable line", "torn last line"],
    ),
    "garbage_middle": (
        b"\n".join(_lines(_stream()[:6]) + [b"#### not json ####"] + _lines(_stream()[6:])) + b"\n",
        15,
        ["line 7 (not valid JSON)"],
    ),
    "not_an_event": (
        b"\n".join(_lines(_stream()[:3]) + [b"[1, 2, 3]", b'"text"'] + _lines(_stream()[3:])) + b"\n",
        15,
        ["2 unreadable lines", "line 4 (not an event object)", "line 5 (not an event object)"],
    ),
    "nul_bytes": (
        b"\n".join(_lines(_stream()[:8]) + [b"\0" * 4096] + _lines(_stream()[8:])) + b"\n",
        15,
        ["line 9 (not valid JSON)"],
    ),
    "invalid_utf8": (
        b"\n".join(_lines(_stream()[:4]) + [b'{"v":1,"kind":"log","x":"\xff\xfe"}'] + _lines(_stream()[4:])) + b"\n",
        15,
        ["line 5 (not valid JSON)"],
    ),
    "crlf_lines": (b"\r\n".join(_lines(_stream())) + b"\r\n", 15, []),
    "unknown_kind": (
        b"\n".join(_lines(_stream()[:2]) + [b'{"v":2,"t":1,"kind":"from-the-future","x":1}'] + _lines(_stream()[2:]))
        + b"\n",
        16,
        [],
    ),
    "empty": (b"", 0, []),
    "missing": (None, 0, []),
}


@pytest.mark.parametrize("name", list(CASES))
def test_attach_json_survives_and_says_what_it_skipped(name, sage_home):
    body, n, words = CASES[name]
    run = _run(sage_home, name.replace("_", "-"), body)
    p = cli("attach", run.name, "--no-tui", "--json", timeout=60)
    assert "Traceback" not in p.stderr, p.stderr
    assert p.returncode == 0, p.stderr  # the run completed: status.json says so
    evs = [json.loads(ln) for ln in p.stdout.splitlines()]
    assert len(evs) == n
    if n:
        assert [e["step"] for e in evs if e["kind"] == "log"] == list(range(1, 13))
    for w in words:
        assert w in p.stderr, p.stderr
    if words:
        assert "note: skipped" in p.stderr and str(run / "events.jsonl") in p.stderr
    else:
        assert "skipped" not in p.stderr
    if n == 0:
        assert "holds no events" in p.stderr and f"{run.name} is completed" in p.stderr


def test_attach_rich_view_says_what_it_skipped(sage_home, capsys):
    """The Rich view (a terminal) says it too; off a terminal, attach prints JSON lines."""
    from sage_ft_tui.cli.output import follow_run

    body, _, _ = CASES["garbage_middle"]
    run = _run(sage_home, "rich", body + b'{"torn')
    assert follow_run(run, json_lines=False) == "completed"
    out = " ".join(capsys.readouterr().out.split())
    assert "skipped 2 unreadable lines" in out and "line 7 (not valid JSON)" in out and "torn last line" in out
    assert "rich: completed" in out


def test_failed_run_without_a_final_event_is_named(sage_home):
    """A worker that died (disk full, kill -9) leaves no final status event: attach ends
    and says how the run ended, from status.json."""
    evs = _stream()[:-1]
    run = _run(sage_home, "nofinal", b"\n".join(_lines(evs)) + b"\n", state="failed")
    p = cli("attach", run.name, "--no-tui", "--json", timeout=60)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert len(p.stdout.splitlines()) == len(evs)
    assert "note: nofinal is failed (disk: full)" in p.stderr


def test_resumed_stream_is_replayed_past_the_earlier_end(sage_home):
    """cancelled, then resumed to completion: attach replays the whole history."""
    first = _stream(6)[:-1] + [{"v": 1, "t": 50.0, "kind": "status", "state": "cancelled", "step": 6}]
    second = [
        {"v": 1, "t": 60.0, "kind": "status", "state": "preparing"},
        {"v": 1, "t": 61.0, "kind": "start", "total_steps": 12, "resumed_from_step": 6},
    ]
    second += [{"v": 1, "t": 62.0 + i, "kind": "log", "step": i, "loss": 1.0} for i in range(7, 13)]
    second += [{"v": 1, "t": 80.0, "kind": "status", "state": "completed", "step": 12}]
    run = _run(sage_home, "resumed", b"\n".join(_lines(first + second)) + b"\n")
    p = cli("attach", run.name, "--no-tui", "--json", timeout=60)
    assert p.returncode == 0, p.stderr
    got = [json.loads(ln) for ln in p.stdout.splitlines()]
    assert [e["step"] for e in got if e["kind"] == "log"] == list(range(1, 13))
    assert got[-1]["state"] == "completed"
