"""The headless commands that do not train: help, examples, doctor, list, start, run CONFIG."""

import json

import yaml

from sage_ft_tui.engine.config.schema import RunConfig

from .conftest import cli


def test_help_lists_every_command():
    r = cli("--help")
    assert r.returncode == 0
    for cmd in (
        "start",
        "run",
        "list",
        "attach",
        "cancel",
        "resume",
        "clean",
        "examples",
        "doctor",
        "demo",
        "quickstart",
        "estimate",
        "merge",
        "serve",
        "chat",
    ):
        assert cmd in r.stdout, cmd


def test_no_tui_without_a_command_prints_help_and_runs():
    r = cli("--no-tui")
    assert r.returncode == 0 and "Usage" in r.stdout and "no runs yet" in r.stdout


def test_examples_print_a_loadable_full_config():
    r = cli("examples")
    assert r.returncode == 0
    tail = r.stdout[r.stdout.index("version: 1") :]
    cfg = RunConfig.from_dict(yaml.safe_load(tail))
    assert cfg == RunConfig()
    assert "instruction" in r.stdout and "question" in r.stdout


def test_doctor_reports_versions_and_cpu_mode():
    r = cli("doctor", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["packages"]["torch"] and rep["packages"]["trl"]
    assert rep["gpus"] == [] and rep["cuda"] is None and rep["disk_free_gib"] > 0


def test_start_writes_config_and_report_then_run_config_reproduces(sample_data, sage_home):
    r = cli(
        "start",
        "--task",
        "chat",
        "--model",
        "tiny-demo",
        "--data",
        str(sample_data["sharegpt"]),
        "--name",
        "s1",
        "--max-length",
        "96",
        "--set",
        "lora.r=4",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    run = sage_home / "s1"
    # 80 rows: the default holds out 5% (4 rows) for Evaluate
    assert out["name"] == "s1" and (out["data"]["train"], out["data"]["eval"]) == (76, 4)
    assert out["plan"]["train_rows"] == 76 and out["plan"]["total_steps"] >= 1  # engine/runs/plan.py, as in Review
    cfg = RunConfig.load(run / "config.yaml")
    assert cfg.lora.r == 4 and cfg.training.max_length == 96 and cfg.task == "chat"
    rep = json.loads((run / "data" / "data_report.json").read_text())
    assert rep["format"] == "sharegpt" and rep["tokens"]["max_length"] == 96 and 0 < rep["tokens"]["trained_share"] < 1
    # `run CONFIG.yaml` makes a new run from it, never reusing the old folder
    again = cli("run", str(run / "config.yaml"), "--detach")
    assert again.returncode == 0 and "created run s1-2" in again.stdout, again.stderr
    assert (sage_home / "s1-2" / "status.json").exists() and RunConfig.load(run / "config.yaml") == cfg
    cli("cancel", "s1-2")


def test_list_json_is_empty_then_names_runs(sample_data, sage_home):
    assert json.loads(cli("list", "--json").stdout) == []
    made = cli("start", "--model", "tiny-demo", "--data", str(sample_data["qa"]), "--name", "l1")
    assert "optimizer steps" in made.stdout and "tokens/step" in made.stdout, made.stdout
    assert made.stdout.count("6 of 120 rows held out for evaluation (the default 5%") == 1, made.stdout  # said once
    runs = json.loads(cli("list", "--json").stdout)
    assert [r["name"] for r in runs] == ["l1"] and runs[0]["state"] == "created"
