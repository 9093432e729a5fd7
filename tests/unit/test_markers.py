"""tests/markers.py: what a started process costs, read from its argv, and the one-line
failure of a test that started more than its markers declare."""

import sys

from tests.markers import check_started, cost_of, marks_for

PY = sys.executable


def test_a_process_costs_what_it_does():
    assert cost_of([PY, "-m", "sage_ft_tui", "demo", "--no-tui"]) == {"subprocess", "train"}
    assert cost_of([PY, "-m", "sage_ft_tui", "start", "--queue", "--data", "x"]) == {"subprocess", "train"}
    assert cost_of([PY, "-m", "sage_ft_tui", "start", "--data", "x"]) == {"subprocess"}
    assert cost_of([PY, "-m", "sage_ft_tui.engine.worker", "/runs/a"]) == {"subprocess", "train"}
    assert cost_of(["tmux", "-S", "/tmp/s", "new-session"]) == {"subprocess", "tmux"}
    assert cost_of(["git", "ls-files"]) == set() and cost_of("nvidia-smi -L") == set()
    assert cost_of(["ruff", "check", "sage_ft_tui"]) == set()
    assert cost_of([PY, "-m", "sage_ft_tui", "run", "--help"]) == {"subprocess"}
    assert cost_of([PY, "-c", "import x", "sage_ft_tui.engine.train.worker"]) == {"subprocess"}  # named, not run


def test_an_undeclared_process_is_one_line_naming_the_marker():
    started = [["git", "status"], [PY, "-m", "sage_ft_tui", "run", "a"]]
    why = check_started("tests/unit/test_markers.py::test_y", {"subprocess"}, started)
    assert why is not None and "not marked train" in why and "sage_ft_tui run a" in why and "\n" not in why
    assert check_started("tests/unit/test_markers.py::test_y", {"subprocess", "train"}, started) is None


def test_fixtures_and_the_table_give_markers():
    assert marks_for("tests/unit/test_markers.py", "test_y", ["tiny_model", "demo_run"]) == {
        "model",
        "train",
        "subprocess",
    }
    assert marks_for("tests/unit/test_markers.py", "test_y", ["tmp_path"]) == set()
