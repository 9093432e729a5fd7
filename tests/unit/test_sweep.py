"""The sweep's parts that need no training: --param checking (one line each, before anything is
made), the pruning decision from recorded events, the ranking, and what names a sweep."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from sage_ft_tui.cli.app import app
from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.sweep import prune
from sage_ft_tui.engine.sweep.params import check_params, parse_param, trial_config
from sage_ft_tui.engine.sweep.results import TrialRow, rank

BAD = [
    ("lora.rr=choice:8,16", "unknown key 'lora.rr'"),
    ("training.learning_rate=normal:1e-5,1e-3", "unknown distribution 'normal'"),
    ("training.learning_rate=loguniform:1e-3,1e-5", "LOW (0.001) must be below HIGH (1e-05)"),
    ("training.learning_rate=loguniform:0,1e-3", "LOW must be above 0"),
    ("training.learning_rate=uniform:1e-5,2", "training.learning_rate must be at most 1"),
    ("lora.r=choice:0,8", "lora.r must be greater than 0"),
    ("lora.r=int:4", "takes two values"),
    ("lora.r=int:1.5,8", "'1.5' is not a whole number"),
    ("lora.r=choice:8", "two or more different values"),
    ("lora=choice:8,16", "a section, not a setting"),
    ("training.packing=uniform:0,1", "not a number"),
    ("task=choice:qa,poetry", "task must be one of"),
    ("name=choice:a,b", "not searchable"),
    ("lora.r", "expected KEY=DIST:ARGS"),
]


@pytest.mark.parametrize("item,said", BAD)
def test_bad_param_is_one_line_naming_it(item, said):
    with pytest.raises(SageError) as e:
        check_params(RunConfig(), [parse_param(item)])
    line = e.value.oneline()
    assert "\n" not in line and said in line and item.partition("=")[0] in line, line
    assert e.value.hint  # what to do


def test_good_params_and_aliases():
    ps = [parse_param(x) for x in ("lr=loguniform:1e-5,1e-3", "lora.r=choice:8,16,32", "lora.dropout=uniform:0,0.2")]
    check_params(RunConfig(), ps)
    assert ps[0].key == "training.learning_rate" and ps[0].args == (1e-5, 1e-3)  # 1e-5 is a number, not YAML text
    assert ps[1].args == (8, 16, 32)
    with pytest.raises(SageError, match="given twice"):
        check_params(RunConfig(), [*ps, parse_param("training.learning_rate=uniform:0.1,0.2")])
    cfg = trial_config(RunConfig(), {"training.learning_rate": 3e-4, "lora.r": 32}, "s-t000")
    assert (cfg.training.learning_rate, cfg.lora.r, cfg.name) == (3e-4, 32, "s-t000")


def test_cli_bad_param_exits_2_with_one_line_and_makes_nothing(tmp_path, sage_home):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: {name: tiny-demo}\n")
    for args in (["--param", "lora.r=choice:0,8"], ["--param", "lr=loguniform:1e-3"], []):
        r = CliRunner().invoke(app, ["sweep", str(cfg), *args, "--trials", "4"])
        assert r.exit_code == 2, r.output
        lines = [ln for ln in r.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    r = CliRunner().invoke(app, ["sweep", "nosuch"])
    assert r.exit_code == 2 and "no sweep named 'nosuch'" in r.output
    assert not (sage_home / "sweeps").exists()


def _events(evals: list[float], held_out: int = 4) -> list[dict]:
    """A run's recorded stream: a start, then a log and an eval per step."""
    evs: list[dict] = [{"kind": "start", "eval_samples": held_out, "train_samples": 36}]
    for step, v in enumerate(evals, 1):
        evs.append({"kind": "log", "step": step, "loss": v + 0.5})
        if held_out:  # a run without held-out rows never evaluates
            evs.append({"kind": "eval", "step": step, "eval_loss": v})
    return evs


def test_pruning_decision_from_recorded_events():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(pruner=optuna.pruners.MedianPruner(n_startup_trials=1))
    done = _events([7.3, 7.1, 6.9])
    first = study.ask()
    assert not prune.should_prune(first, done, set())  # no completed trial yet: never pruned
    study.tell(first, prune.final_value(done, prune.EVAL))
    worse, better, early = study.ask(), study.ask(), study.ask()
    assert prune.should_prune(worse, _events([7.4]), set())  # above the median at step 1
    reported: set[int] = set()
    assert not prune.should_prune(better, _events([7.2, 7.0]), reported) and reported == {1, 2}
    assert not prune.should_prune(better, _events([7.2, 7.0]), reported)  # nothing new: nothing asked
    assert not prune.should_prune(early, [{"kind": "log", "step": 1, "loss": 99.0}], set())  # before its start event


def test_objective_falls_back_to_train_loss_without_held_out_rows():
    evs = _events([7.0, 6.0], held_out=0)
    assert prune.objective_of(evs) == prune.TRAIN
    assert prune.final_value(evs, prune.TRAIN) == 6.5
    assert prune.objective_of(_events([7.0])) == prune.EVAL
    torn = [*_events([7.0]), {"kind": "eval", "step": 2, "eval_loss": float("nan")}]
    assert prune.points(torn, prune.EVAL) == [(1, 7.0)]  # a non-finite value never ranks a trial


def test_ranking_puts_complete_trials_first_by_value():
    rows = [
        TrialRow(0, "pruned", value=7.5),
        TrialRow(1, "complete", value=7.0),
        TrialRow(2, "failed"),
        TrialRow(3, "complete", value=6.8),
        TrialRow(4, "running", value=7.2),
    ]
    assert [t.number for t in rank(rows)] == [3, 1, 4, 0, 2]


def test_the_same_search_gets_the_same_name():
    from sage_ft_tui.engine.sweep.control import default_name

    ps = [parse_param("lr=loguniform:1e-5,1e-3")]
    a = default_name(RunConfig(), ps, 0, "/x/my-config.yaml")
    assert a == default_name(RunConfig(name="other"), ps, 0, "/y/my-config.yaml") and a.startswith("my-config-")
    assert a != default_name(RunConfig(), ps, 1, "/x/my-config.yaml")


def test_stop_takes_a_queued_trial_out_of_the_queue(sage_home, tiny_model, sample_data):
    """`sweep NAME --stop` with no driver alive: the trial waiting in the queue is taken out (a real
    created run, a real queue entry; nothing trains)."""
    from sage_ft_tui.engine.fsutil import atomic_write_json
    from sage_ft_tui.engine.queue import enqueue, entries
    from sage_ft_tui.engine.runs.start import start_run
    from sage_ft_tui.engine.sweep.store import SweepSpec, save_spec, sweep_dir

    base = RunConfig.from_dict(
        {"model": {"name": "tiny-demo"}, "data": {"paths": [str(sample_data["instruction"])], "max_samples": 20}}
    )
    lay = sweep_dir("s", sage_home)
    save_spec(lay, SweepSpec("s", base.model_dump(mode="json"), [parse_param("lora.r=choice:4,8")], trials=2))
    run = start_run(trial_config(base, {"lora.r": 4}, "s-t000"), launch=False).run
    enqueue(run, tag="sweep s trial 0")
    atomic_write_json(
        lay.trials, {"trials": [{"number": 0, "run": str(run), "params": {"lora.r": 4}, "state": "running"}]}
    )
    r = CliRunner().invoke(app, ["sweep", "s"])
    assert r.exit_code == 0 and "queued" in r.output and "driver not started" in r.output, r.output
    r = CliRunner().invoke(app, ["sweep", "s", "--stop"])
    assert r.exit_code == 0 and "s-t000 taken out of the queue" in r.output, r.output
    assert [e.state for e in entries()] == ["removed"]
