"""The CLI↔TUI job protocol: what a job writes is what the screens read back."""

from __future__ import annotations

import io
import sys

from sage_ft_tui.engine import jobs
from sage_ft_tui.engine.errors import SageError


def test_records_round_trip_through_one_line_each():
    buf = io.StringIO()
    err = SageError("port 8000 on 127.0.0.1 is already in use", hint="choose another --port — or 0", kind="serve")
    err.log_tail = ["OSError: [Errno 98] Address already in use"]  # type: ignore[attr-defined]
    jobs.write(jobs.Progress("merge", "load", {"dtype": "float32", "stage": "ignored"}), buf)
    jobs.write(jobs.Result("merge", {"report": {"output": "/r/merged"}}), buf)
    jobs.write(jobs.JobError.from_error("serve", err), buf)
    lines = buf.getvalue().splitlines()
    assert len(lines) == 3
    got = [jobs.parse_line(ln) for ln in lines]
    assert got[0] == jobs.Progress("merge", "load", {"dtype": "float32"})
    assert got[1] == jobs.Result("merge", {"report": {"output": "/r/merged"}})
    back = got[2].to_error()  # type: ignore[union-attr]
    # the hint keeps its own " — ": nothing is re-split from the one-liner
    assert (back.message, back.hint, back.kind) == (err.message, err.hint, "serve")
    assert back.log_tail == err.log_tail  # type: ignore[attr-defined]


def test_lines_that_are_not_records_are_skipped():
    for line in ("", "warning: something", "{torn", "[1, 2]", '{"event": "result"}', '{"v": 1, "event": "nope"}'):
        assert jobs.parse_line(line) is None


def _job(script: str) -> list[str]:
    return [sys.executable, "-c", script]


def test_run_job_streams_progress_and_returns_the_result():
    script = (
        "from sage_ft_tui.engine import jobs; import sys\n"
        "print('a library warning')\n"
        "sys.stderr.write('noise\\n' * 20000)\n"  # more than a pipe holds: must not stall the job
        "jobs.emit_progress('merge', 'load', {'device': 'cpu'})\n"
        "jobs.emit_result('merge', {'report': {'seconds': 1.5}})\n"
    )
    seen: list[jobs.Progress] = []
    out = jobs.run_job(_job(script), job="merge", on_progress=seen.append)
    assert out.returncode == 0 and out.error is None
    assert out.result == {"report": {"seconds": 1.5}}
    assert [(p.stage, p.info) for p in seen] == [("load", {"device": "cpu"})]


def test_run_job_error_record_and_silent_failure():
    script = (
        "from sage_ft_tui.engine import jobs; from sage_ft_tui.engine.errors import SageError; import sys\n"
        "jobs.emit_error('merge', SageError('no adapter in r', hint='train first', kind='model', where='r/adapter'))\n"
        "sys.exit(2)\n"
    )
    out = jobs.run_job(_job(script), job="merge")
    assert out.result is None and out.returncode == 2
    assert out.error is not None and out.error.oneline() == "error: r/adapter: no adapter in r — train first"
    assert out.error.kind == "model"
    out = jobs.run_job(_job("import sys; sys.stderr.write('boom\\n'); sys.exit(3)"), job="serve")
    assert out.error is not None and out.error.message == "serve exited with code 3" and out.error.hint == "boom"
    out = jobs.run_job(["/no/such/program"], job="serve")
    assert out.error is not None and "cannot run the serve" in out.error.message
