"""The wizard's Monitor screen, driven headlessly (Textual's run_test) against a live run:
its GPU/VRAM panels are fed by this process's own NVML polls (the screen polls while the
run is active), and the screen is saved as an SVG."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path


async def _drive(run: Path, out_svg: Path, timeout: float, want_gpu: bool) -> dict:
    from sage_ft_tui.tui.app import SageApp
    from sage_ft_tui.tui.messages import HardwareRead

    polls: dict[int, dict] = {}  # by identity: a message is seen at each node it reaches

    def hook(message) -> None:
        if isinstance(message, HardwareRead):
            polls[id(message.reading)] = message.reading

    app = SageApp(attach=str(run))
    t0 = time.monotonic()
    async with app.run_test(headless=True, size=(120, 40), message_hook=hook) as pilot:
        mon = None
        while time.monotonic() - t0 < timeout:
            await pilot.pause(0.25)
            if type(app.screen).__name__ != "MonitorScreen":
                continue
            mon = app.screen
            gpus_fed = any((g.last.get("mem_used") or 0) > 0 for g in mon.model.gpus.values())
            ended = mon._state()[0] in ("completed", "failed", "cancelled")
            if ended or (len(mon.model.train) >= 2 and (gpus_fed and len(polls) >= 2 or not want_gpu)):
                break
        await pilot.pause(0.6)  # one more 2 Hz redraw with the latest readings
        from sage_ft_tui.engine.runs.state import derive_state

        state_at_shot = derive_state(run)[0]
        app.save_screenshot(filename=out_svg.name, path=str(out_svg.parent))
        model = mon.model if mon is not None else None
        gpus = (
            [
                {k: g.last.get(k) for k in ("index", "name", "util", "mem_used", "mem_total", "temp", "power")}
                for g in model.gpus.values()
            ]
            if model
            else []
        )
        return {
            "screenshot": str(out_svg),
            "seconds": round(time.monotonic() - t0, 1),
            "run_state_at_screenshot": state_at_shot,
            "train_points": len(model.train) if model else 0,
            "loss": model.loss if model else None,
            "live_nvml_polls": sum(1 for p in polls.values() if p.get("gpus")),
            "live_host_polls": len(polls),
            "gpus_shown": gpus,
            "events_seen": model.events if model else 0,
        }


def drive_monitor(run: Path, out_svg: Path, timeout: float, want_gpu: bool) -> dict:
    """Attach the Monitor to `run` until it shows loss points (and, on a GPU, live NVML
    readings), then save the screen to `out_svg`."""
    from sage_ft_tui.engine.hardware.probe import get_backend

    res = asyncio.run(_drive(run, out_svg, timeout, want_gpu))
    res["hardware_backend"] = type(get_backend()).__name__
    return res
