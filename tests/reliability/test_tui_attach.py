"""The wizard's attach (what `sage-ft-tui attach RUN` opens on a terminal) on a corrupt
event stream: it shows the run and says what it skipped."""

from __future__ import annotations

import json
import time

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.runs.create import create_run
from sage_ft_tui.engine.runs.state import write_status


async def test_monitor_says_what_it_skipped(sage_home, tmp_path, monkeypatch):
    monkeypatch.delenv("SAGE_FT_HW_RECORDED", raising=False)
    from sage_ft_tui.tui.app import SageApp

    run = create_run(RunConfig.from_dict({"name": "corrupt", "task": "qa", "data": {"paths": ["x"]}}), prepare=False)
    write_status(run, state="completed", step=6, total_steps=6)
    lines = [json.dumps({"v": 1, "t": 1.0, "kind": "start", "total_steps": 6, "resumed_from_step": 0})]
    lines += [json.dumps({"v": 1, "t": 2.0 + i, "kind": "log", "step": i + 1, "loss": 3.0 - i * 0.1}) for i in range(6)]
    lines.insert(3, "#### garbage ####")
    lines.append(json.dumps({"v": 1, "t": 9.0, "kind": "status", "state": "completed"}))
    (run / "events.jsonl").write_text("\n".join(lines) + '\n{"v":1,"kind":"lo')
    app = SageApp(attach=str(run), cwd=str(tmp_path))
    async with app.run_test(size=(100, 32)) as pilot:
        deadline = time.monotonic() + 30
        texts = lambda: " ".join(str(n.message) for n in app._notifications)  # noqa: E731
        while time.monotonic() < deadline and not (
            "line 4 (not valid JSON)" in texts() and "torn last line" in texts()
        ):
            await pilot.pause(0.1)
        assert "line 4 (not valid JSON)" in texts() and "line 10 (torn last line)" in texts(), texts()
        assert app.screen.model.step == 6 and app.screen.model.state == "completed"
