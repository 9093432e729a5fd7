"""The demo data trains what the demo claims: no warnings (duplicates would be grouped on
one side of the split), and the demo question itself is in the train split."""

from sage_ft_tui.engine.data.load import load_training_data
from sage_ft_tui.engine.data.split import split
from sage_ft_tui.engine.recipes.demo import DEMO_DATA, DEMO_PHRASE, DEMO_QUESTION, demo_config, sample_path


def test_demo_data_is_clean_and_trains_the_question():
    cfg = demo_config()
    loaded = load_training_data([str(sample_path(DEMO_DATA))], task=cfg.task, max_length=cfg.training.max_length)
    assert loaded.duplicates == 0 and not loaded.bad and not loaded.findings, loaded.findings
    train, held = split(loaded.records, cfg.data.validation_split, cfg.training.seed, loaded.groups)
    asked = [r for r in train if r["messages"][-2]["content"] == DEMO_QUESTION]
    assert len(asked) == 1 and DEMO_PHRASE in asked[0]["messages"][-1]["content"]
    assert held and all(r["messages"][-2]["content"] != DEMO_QUESTION for r in held)
