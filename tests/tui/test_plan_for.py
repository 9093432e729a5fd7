"""The Hardware step plans for another card: picking "H100 80GB" shows the bf16 GPU plan
for it, computed by the engine (gpus.target_snapshot + fit_hardware), on this CPU machine."""

from __future__ import annotations

from textual.widgets import Select, Static

from sage_ft_tui.tui.app import SageApp
from sage_ft_tui.tui.screens.wizard.hardware import HardwareScreen

from .conftest import wait_for


async def test_plan_for_another_machine(world):
    app = SageApp()
    async with app.run_test(size=(120, 40)) as pilot:
        app.state.model = "tiny-demo"
        await app.push_screen(HardwareScreen())
        screen = app.screen
        await wait_for(pilot, lambda: screen.snap is not None)
        screen.query_one("#f-target", Select).value = "H100 80GB"

        def why() -> str:
            return str(screen.query_one("#hw-why", Static).render())

        await wait_for(pilot, lambda: "Recommended for H100 80GB" in why())
        assert "bf16" in why() and "H100 80GB" in why()
        assert screen.snap.gpus == [] or screen.snap.gpus[0].name != "H100 80GB"  # the run still uses this machine
        # and the time plan on that card (engine/runs/cost.py): tokens/s, the MFU it assumed, the wall time
        text = " ".join(why().split())
        assert "tokens/s on H100 80GB" in text and "assumed MFU 35% (default for LoRA bf16)" in text
        assert "wall time" in text
