"""The queue without training: GPU choice through the probe's recorded snapshots (the one
hardware test double), the state file's refusals, order and corruption, and a scheduler pass
that must wait for a GPU another user fills."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sage_ft_tui.engine import queue as Q
from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.fsutil import GiB, MiB
from sage_ft_tui.engine.hardware.probe import RECORDED_ENV, RecordedBackend
from sage_ft_tui.engine.hardware.readings import snapshot_to_dict
from sage_ft_tui.engine.queue.fit import Active, place
from sage_ft_tui.engine.queue.state import queue_files
from sage_ft_tui.engine.runs.create import create_run
from sage_ft_tui.engine.runs.state import run_lock, write_status

HW = Path(__file__).parent / "fixtures" / "hardware"
SAMPLE = Path(__file__).resolve().parents[2] / "sage_ft_tui" / "samples" / "instruction_alpaca.jsonl"


def snap(name: str):
    return RecordedBackend(HW / f"{name}.json").snapshot()


# ---- where a run may start ---------------------------------------------------------------


def test_without_gpus_runs_go_one_after_another():
    assert place(snap("no_gpu"), []).ok
    p = place(snap("no_gpu"), [Active("first")])
    assert not p.ok and "first" in p.wait


def test_never_two_runs_on_one_gpu_unless_asked():
    eight = snap("a100x8")
    assert place(eight, [Active("a", {0})], need_bytes=10 * GiB).gpus == [1]
    assert place(eight, [Active("a", {0}), Active("b", {1, 2})], need=2, need_bytes=GiB).gpus == [3, 4]
    one = snap("rtx4090")
    p = place(one, [Active("a", {0})], need_bytes=GiB)
    assert not p.ok and "GPU 0 is training a" in p.wait
    assert place(one, [Active("a", {0})], need_bytes=GiB, share_gpu=True).gpus == [0]


def test_a_gpu_is_free_by_its_memory_not_only_by_having_no_run_of_ours():
    shared = snap("shared_a100_70pct")  # another user's process holds ~70% of the card
    p = place(shared, [], need_bytes=20 * GiB)
    assert not p.ok and "12.0 GiB free" in p.wait and "20.0 GiB" in p.wait
    assert place(shared, [], need_bytes=8 * GiB).gpus == [0]
    unknown = place(shared, [], need_bytes=None)  # no estimate: a GPU with any process waits
    assert not unknown.ok and "process" in unknown.wait


def test_gpus_this_machine_lacks_are_never_waited_for():
    assert "GPU 5 is not on this machine" in place(snap("rtx4090"), [], candidates=[5]).never
    assert "needs 2 GPUs" in place(snap("a100x8"), [], need=2, candidates=[3]).never


# ---- the state file ---------------------------------------------------------------------


def _created(name: str, home: Path) -> Path:
    cfg = RunConfig.from_dict(
        {"name": name, "task": "instruction", "model": {"name": "tiny-demo"}, "data": {"paths": [str(SAMPLE)]}}
    )
    return create_run(cfg, home, prepare=False)


@pytest.fixture
def three(sage_home):
    return [_created(f"r{i}", sage_home) for i in range(3)]


def test_enqueue_order_move_and_remove(three):
    a, b, c = three
    for r in three:
        Q.enqueue(r, gpus=[1, 0, 1], tag="t")
    assert [e.name for e in Q.entries()] == ["r0", "r1", "r2"]
    assert Q.entries()[0].gpus == [0, 1] and Q.entries()[0].state == "queued"
    Q.move(c, 1)
    assert [e.name for e in Q.entries()] == ["r2", "r0", "r1"]
    Q.remove(a)
    assert [(e.name, e.state) for e in Q.entries()] == [("r2", "queued"), ("r0", "removed"), ("r1", "queued")]
    Q.move(b, 1)  # removed entries keep their place, queued ones reorder around them
    assert [e.name for e in Q.entries()] == ["r1", "r0", "r2"]
    Q.remove(a)  # a removed entry leaves the list
    assert [e.name for e in Q.entries()] == ["r1", "r2"]
    Q.enqueue(a)
    assert Q.entries()[-1].name == "r0"
    assert Q.ensure_scheduler is not None and Q.scheduler_pid() is None


def test_bad_inputs_are_one_line_refusals(three, sage_home, tmp_path):
    a, b, _ = three
    Q.enqueue(a)
    cases = {
        "already in the queue": lambda: Q.enqueue(a),
        "is not a run folder": lambda: Q.enqueue(tmp_path),
        "does not exist": lambda: Q.enqueue(sage_home / "nosuch"),
        "outside the queue (1 to 1)": lambda: Q.move(a, 2),
        "is not in the queue": lambda: Q.remove(b),
        "give GPU indices": lambda: Q.enqueue(b, gpus=[-1]),
    }
    for words, call in cases.items():
        with pytest.raises(SageError) as e:
            call()
        assert words in e.value.oneline() and "\n" not in e.value.oneline()
    write_status(b, state="completed")
    with pytest.raises(SageError, match="has already run"):
        Q.enqueue(b)


def test_a_running_run_is_refused(three):
    run = three[0]
    with run_lock(run):  # the worker's own lock, held as a worker holds it
        write_status(run, state="running", pid=os.getpid())
        with pytest.raises(SageError, match="already running"):
            Q.enqueue(run)


def test_a_corrupt_queue_file_is_kept_aside_and_said_in_one_line(three, sage_home):
    Q.enqueue(three[0])
    state = queue_files().state
    state.write_text('{"entries": [{"run": 3', encoding="utf-8")
    with pytest.raises(SageError) as e:
        Q.entries()
    assert e.value.code == "queue_corrupt" and "kept it as" in e.value.message
    aside = list(sage_home.glob(".sage-queue.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text() == '{"entries": [{"run": 3'
    assert Q.entries() == []  # from now on an empty queue; the old file is not lost
    Q.enqueue(three[1])
    assert [e.name for e in Q.entries()] == ["r1"]


# ---- a scheduler pass through the probe's test double ----------------------------------


def test_the_scheduler_waits_for_a_gpu_another_user_fills(three, sage_home, tmp_path, monkeypatch, tiny_model):
    from sage_ft_tui.engine.queue.scheduler import poll_once
    from sage_ft_tui.engine.queue.state import read_entries

    full = snapshot_to_dict(snap("rtx4090"))
    full["gpus"][0]["mem_free"] = 100 * MiB  # someone else's job holds the card
    rec = tmp_path / "full.json"
    rec.write_text(json.dumps(full), encoding="utf-8")
    monkeypatch.setenv(RECORDED_ENV, str(rec))
    Q.enqueue(three[0])
    files = queue_files()
    items = read_entries(files)
    assert poll_once(files, items)
    (e,) = items
    assert e.state == "queued" and "GPU 0 has 100.0 MiB free, the run needs" in e.note
    assert not poll_once(files, items)  # nothing changed: nothing written again


def test_a_failed_run_does_not_stop_the_queue(sage_home):
    """One pass: a started run that failed is marked failed (its result kept), and the queue goes
    on to the next, whose launch is refused here (pinned to a GPU this CPU machine lacks): failed
    with that one line, not retried, nothing left waiting."""
    from sage_ft_tui.engine.queue.scheduler import poll_once
    from sage_ft_tui.engine.queue.state import read_entries

    done = _created("went-wrong", sage_home)
    pinned = create_run(
        RunConfig.from_dict(
            {
                "name": "pinned",
                "task": "instruction",
                "model": {"name": "tiny-demo"},
                "data": {"paths": [str(SAMPLE)]},
                "training": {"gpus": [5]},
            }
        ),
        sage_home,
        prepare=False,
        here=False,
    )
    Q.enqueue(done)
    Q.enqueue(pinned)
    files = queue_files()
    items = read_entries(files)
    items[0].state = "started"
    write_status(done, state="failed", exit_reason="data: no usable rows", ended=123.0)
    assert poll_once(files, items)
    assert [(e.name, e.state, e.result) for e in items] == [
        ("went-wrong", "failed", "failed"),
        ("pinned", "failed", ""),
    ]
    assert items[0].note == "data: no usable rows" and items[0].ended == 123.0
    assert "GPU 5 does not exist here" in items[1].note
