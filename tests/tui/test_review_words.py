"""Review in the user's words: settings the task's trainer never reads are not offered
(packing for preference runs), a refused combination names its settings as the screen shows
them ("Preference › method / Training › micro_batch_size"), and saving says what the file is
for in the app's words, not as a command to type."""

from __future__ import annotations

from sage_ft_tui.engine.data.samples import sample_path
from sage_ft_tui.tui.app import SageApp


def _review(world, task: str) -> SageApp:
    from sage_ft_tui.tui.screens.wizard.review import ReviewScreen

    def initial(app):
        s = app.state
        s.task, s.model, s.name = task, "tiny-demo", "words"
        s.data_paths = [str(sample_path("preference_pairs.jsonl"))]
        return [ReviewScreen()]

    return SageApp(live=False, cwd=str(world / "project"), initial=initial)


async def test_preference_review_hides_packing_names_combinations_on_screen_and_saves_in_app_words(world):
    app = _review(world, "preference")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert not screen.query("#row-cfg-training-packing")  # the preference trainer does not pack
        assert screen.query("#row-cfg-training-micro-batch-size") and screen.query("#row-cfg-preference-method")
        screen.query_one("#cfg-preference-method").value = "kto"
        screen.query_one("#cfg-training-micro-batch-size").value = "1"
        await pilot.pause()
        err = screen.query_one("#error").render().plain
        assert "Preference › method / Training › micro_batch_size: kto" in err, err
        assert "preference.method" not in err and "training.micro_batch_size" not in err and "edited:" not in err
        screen.query_one("#cfg-training-micro-batch-size").value = "2"
        await pilot.pause()
        assert not screen.query_one("#error").display
        await pilot.press("ctrl+s")
        await pilot.pause()
        note = next(iter(app._notifications))
        assert note.title == "Config saved" and "words.yaml" in note.message, note.message
        assert "sage-ft-tui" not in note.message and "ctrl+n" in note.message
        assert (world / "project" / "words.yaml").is_file()


def test_packing_is_offered_where_the_trainer_packs():
    from sage_ft_tui.tui.screens.wizard.review import grouped_keys

    def keys(task):
        return {k for _t, ks in grouped_keys(task) for k in ks}

    assert "training.packing" in keys("instruction") and "training.packing" in keys("chat")
    assert "training.packing" not in keys("preference") and "training.packing" not in keys("grpo")
