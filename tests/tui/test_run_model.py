"""The monitor's data model: folding events, bounded memory, the log tail."""

from __future__ import annotations

from sage_ft_tui.engine.fsutil import fmt_duration
from sage_ft_tui.tui.follow import tail_lines
from sage_ft_tui.tui.run_model import Decimated, RunModel


def test_decimated_keeps_whole_run_in_bounded_points():
    d = Decimated(cap=64)
    for i in range(100_000):
        d.append(i, 1.0 / (i + 1))
    assert len(d) <= 65
    xs = [x for x, _ in d.points]
    assert xs[0] == 0 and xs[-1] > 90_000  # first and (nearly) last step both there
    assert xs == sorted(xs)


def test_run_model_folds_events_and_ignores_unknown_kinds():
    m = RunModel()
    m.feed(
        [
            {"t": 10, "kind": "start", "total_steps": 100},
            {"t": 11, "kind": "status", "state": "running"},
            {"t": 12, "kind": "log", "step": 5, "loss": 2.5, "learning_rate": 1e-4, "tokens_per_s": 900.0, "eta_s": 50},
            {"t": 13, "kind": "eval", "step": 5, "eval_loss": 2.7},
            {"t": 14, "kind": "something-new", "x": 1},
            {
                "t": 15,
                "kind": "hw",
                "gpus": [{"index": 0, "name": "H100", "util": 50, "mem_used": 1, "mem_total": 4}],
                "cpu_percent": 12.0,
                "ram_used": 1,
                "ram_total": 2,
            },
            {"t": 16, "kind": "error", "error_kind": "oom", "message": "OOM", "hint": "h", "recovering": True},
            {"t": 17, "kind": "log", "step": 10, "loss": 2.0},
        ]
    )
    assert m.step == 10 and m.total_steps == 100 and m.loss == 2.0 and m.last_eval == 2.7
    assert m.error is None  # the OOM retry worked
    assert list(m.gpus[0].mem) == [25.0] and list(m.cpu) == [12.0]
    assert m.elapsed(now=30) == 20
    m.feed(
        [
            {"t": 40, "kind": "error", "error_kind": "data", "message": "bad", "hint": "fix"},
            {"t": 41, "kind": "status", "state": "failed"},
        ]
    )
    assert m.finished and m.error["error_kind"] == "data" and m.eta is None and m.elapsed(now=999) == 31


def test_run_model_memory_is_bounded():
    m = RunModel()
    hw = {
        "kind": "hw",
        "gpus": [{"index": 0, "util": 1, "mem_used": 1, "mem_total": 2}],
        "cpu_percent": 1,
        "ram_used": 1,
        "ram_total": 2,
    }
    for i in range(50_000):
        m.feed(
            [
                {"t": i, "kind": "log", "step": i, "loss": 1.0, "learning_rate": 1e-4, "tokens_per_s": 5.0},
                hw,
                {"t": i, "kind": "checkpoint", "step": i},
            ]
        )
    assert len(m.train) <= m.train.cap + 1 and len(m.tps) <= 120 and len(m.gpus[0].util) <= 120
    assert len(m.checkpoints) <= 20


def test_log_tail_follows_growing_file(tmp_path):
    p = tmp_path / "train.log"
    p.write_text("".join(f"line {i}\n" for i in range(1000)))
    lines, off = tail_lines(p, 100)
    assert lines[-1] == "line 999" and len(lines) < 20
    with open(p, "a") as fh:
        fh.write("new one\npartial")
    lines, off = tail_lines(p, 100, off)
    assert lines == ["new one"]
    assert fmt_duration(3725) == "1h02m" and fmt_duration(None) == "—"
