"""The Hardware step's refusals name the field's label in one line, never a config key."""

from __future__ import annotations

from . import factory


async def test_hardware_errors_name_the_fields_label(world):
    app = factory.make_app("hardware", world)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        err = screen.query_one("#error")
        for field, typed, said in [
            ("learning_rate", "0", "✗ Learning rate must be greater than 0, not '0'"),
            ("learning_rate", "", "✗ Learning rate is empty: type a number, e.g. 0.0002"),
            ("learning_rate", "2e-4", None),
            ("max_steps", "0", "✗ Max steps / Epochs: nothing to train; set Epochs > 0 or Max steps > 0"),
            ("max_steps", "-1", None),
            ("micro_batch_size", "1.5", "✗ Micro batch must be a whole number, e.g. 16, not '1.5'"),
        ]:
            screen.query_one(f"#f-{field}").value = typed
            await pilot.pause()
            shown = err.render().plain.split("\n")[0] if err.display else None
            assert shown == said, (field, typed, shown)
            assert shown is None or "training." not in err.render().plain
        why = screen.query_one("#hw-why").render().plain  # the plan for the recorded 2×H100: no flags, no keys
        assert "2 GPUs visible" in why and "gpus (Review › Training)" in why
        assert "--gpus" not in why and "training.gpus" not in why
