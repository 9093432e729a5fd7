"""Round two of the outside-style cases (issue 21): config building, planning, concurrency,
the first quickstart. Inputs written here (not the corpus), through the real CLI (in-process
through Typer's runner where only the config matters, in a subprocess where processes do),
on a machine whose hardware is a recorded CPU-only box (SAGE_FT_HW_RECORDED), so the cases
mean the same on a GPU CI machine."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from sage_ft_tui.cli.app import app
from sage_ft_tui.engine.config.schema import RunConfig, get_dotted
from sage_ft_tui.engine.config.sections import PRESET_NAMES
from sage_ft_tui.engine.runs.layout import RunLayout
from tests.reliability.conftest import CLI, REPO, SAMPLES, cli, one_error_line

NO_GPU = REPO / "tests" / "unit" / "fixtures" / "hardware" / "no_gpu.json"
RTX4090 = REPO / "tests" / "unit" / "fixtures" / "hardware" / "rtx4090.json"
QA = SAMPLES / "qa.jsonl"

# What a user's config.yaml sets: LoRA, optimisation, and every key a preset owns (all CPU-safe).
USER = {
    "task": "qa",
    "model": {"name": "tiny-demo", "quantization": "none"},
    "data": {"paths": [str(QA)]},
    "lora": {"r": 64, "alpha": 128, "target_modules": ["q_proj", "v_proj"]},
    "training": {
        "weight_decay": 0.1,
        "learning_rate": 1e-4,
        "max_steps": 3,
        "micro_batch_size": 2,
        "grad_accumulation": 3,
        "max_length": 256,
        "gradient_checkpointing": True,
        "precision": "fp32",
        "optimizer": "adamw_torch",
    },
}


@pytest.fixture(autouse=True)
def cpu_box(monkeypatch):
    """A recorded machine without a GPU, in this process and every child."""
    from sage_ft_tui.engine.hardware import probe

    monkeypatch.setenv(probe.RECORDED_ENV, str(NO_GPU))
    monkeypatch.setattr(probe, "_cached", None)


def _leaves(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_leaves(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _yaml(tmp_path: Path, data: dict, name: str = "my.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data), encoding="utf-8")
    return p


def _start(*args):
    r = CliRunner().invoke(app, ["start", *map(str, args), "--no-tui"])
    assert "Traceback" not in r.output, r.output
    return r


def _config(home: Path, name: str) -> RunConfig:
    return RunConfig.load(RunLayout(home / name).config)


# ---- item 1: one order, a preset never replaces what the user wrote ----------------------------


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_preset_keeps_every_key_the_file_sets(preset, tmp_path, sage_home):
    """`start --config X --preset P`: every key X sets survives, for every preset (today
    apply_preset replaced the lora and training sections whole: r 16, lr 2e-4, max_steps -1)."""
    cfg_file = _yaml(tmp_path, USER)
    r = _start("--config", cfg_file, "--preset", preset, "--name", f"p-{preset}", "--json")
    assert r.exit_code == 0, r.output
    cfg = _config(sage_home, f"p-{preset}").model_dump(mode="json")
    for key, want in _leaves(USER).items():
        assert get_dotted(cfg, key) == want, (preset, key, get_dotted(cfg, key), want)
    assert cfg["preset"] == preset
    origins = json.loads(r.stdout.strip().splitlines()[-1])["origins"]
    assert origins["lora.r"] == "file my.yaml" and origins["training.max_length"] == "file my.yaml"


def test_a_partial_file_gets_the_preset_under_it_and_start_says_where_each_key_came_from(tmp_path, sage_home):
    part = {"task": "qa", "data": {"paths": [str(QA)]}, "lora": {"r": 8}, "training": {"learning_rate": 1e-4}}
    r = _start("--config", _yaml(tmp_path, part), "--preset", "rtx_4090", "--name", "part", "--lr", "3e-4")
    assert r.exit_code == 0, r.output
    c = _config(sage_home, "part")
    assert (c.lora.r, c.training.learning_rate) == (8, 3e-4)  # file kept, the flag over it
    assert (c.training.micro_batch_size, c.training.max_length, c.training.precision) == (4, 2048, "bf16")
    assert c.lora.alpha == 32 and c.training.max_steps == -1  # not the preset's: it owns neither
    lines = [ln for ln in r.output.splitlines() if ln.startswith("  from")]
    assert any(ln.startswith("  from     preset rtx_4090: ") and "training.precision=bf16" in ln for ln in lines), lines
    assert any("file my.yaml: " in ln and "lora.r=8" in ln for ln in lines), lines
    assert any("flag: " in ln and "training.learning_rate=0.0003" in ln for ln in lines), lines


def test_set_wins_over_a_flag_which_wins_over_the_file(tmp_path, sage_home):
    f = _yaml(tmp_path, {**USER, "training": {"learning_rate": 1e-4, "max_steps": 3}})
    r = _start("--config", f, "--lr", "3e-4", "--set", "lr=5e-4", "--name", "order", "--json")
    assert r.exit_code == 0, r.output
    assert _config(sage_home, "order").training.learning_rate == 5e-4
    assert json.loads(r.stdout.strip().splitlines()[-1])["origins"]["training.learning_rate"] == "--set"


def test_a_typed_value_equal_to_the_default_is_still_said_where_it_came_from(tmp_path, sage_home):
    """`--set training.micro_batch_size=4` (the default's value) was missing from start's `from --set` line."""
    r = _start("--task", "qa", "--data", str(QA), "--set", "training.micro_batch_size=4", "--name", "dflt", "--json")
    assert r.exit_code == 0, r.output
    assert _config(sage_home, "dflt").training.micro_batch_size == 4
    assert json.loads(r.stdout.strip().splitlines()[-1])["origins"]["training.micro_batch_size"] == "--set"


def test_a_target_plan_over_the_file_says_what_it_replaced(tmp_path, sage_home):
    f = _yaml(tmp_path, {**USER, "training": {"micro_batch_size": 2, "max_steps": 3}})
    r = _start("--config", f, "--gpu", "RTX 4090", "--name", "planned")
    assert r.exit_code == 0, r.output
    c = _config(sage_home, "planned")
    assert c.training.micro_batch_size != 2 and c.training.precision == "bf16"
    warn = [ln for ln in r.output.splitlines() if ln.startswith("warning: training.micro_batch_size")]
    assert warn and "RTX 4090" in warn[0] and "my.yaml's 2" in warn[0] and "--set" in warn[0], r.output


def test_preset_that_changes_nothing_says_so(tmp_path, sage_home):
    r = _start("--config", _yaml(tmp_path, USER), "--preset", "auto", "--name", "nothing")
    assert r.exit_code == 0 and "warning: preset auto changes nothing" in r.output, r.output


# ---- item 2: every setting acts or is refused / warned ------------------------------------------


@pytest.mark.parametrize(
    "extra,args,want",
    [
        ({"preference": {"method": "dpo", "beta": 0.3}}, (), "preference.method, preference.beta: the qa task"),
        ({}, ("--set", "preference.beta=0.5"), "preference.beta: the qa task does not read the preference section"),
        ({"grpo": {"num_generations": 8}}, (), "grpo.num_generations: the qa task does not read the grpo section"),
        ({"data": {"paths": [str(QA)], "fim_rate": 0.5}}, (), "data.fim_rate: only the code task reads it"),
        ({"training": {"sharding": "fsdp"}}, (), "training.sharding fsdp: acts only over several GPUs"),
        ({"training": {"epochs": 2, "max_steps": 3}}, (), "training.epochs 2: not used, training.max_steps 3"),
    ],
    ids=["preference_yaml", "preference_set", "grpo_on_qa", "fim_on_qa", "fsdp_one_gpu", "epochs_and_steps"],
)
def test_a_setting_nothing_reads_is_a_warning_naming_it(extra, args, want, tmp_path, sage_home):
    base = {"task": "qa", "model": {"name": "tiny-demo"}, "data": {"paths": [str(QA)]}}
    r = _start("--config", _yaml(tmp_path, {**base, **extra}), *args, "--name", "w")
    assert r.exit_code == 0, r.output
    assert any(ln.startswith("warning: ") and want in ln for ln in r.output.splitlines()), r.output


def test_preference_keys_of_another_method_and_grpo_on_a_preference_run(tmp_path):
    from sage_ft_tui.engine.config.build import ignored_settings

    cfg = RunConfig.from_dict(
        {"task": "preference", "preference": {"method": "orpo", "loss_type": "ipo"}, "grpo": {"beta": 0.1}}
    )
    w = ignored_settings(cfg)
    assert any("preference.loss_type: method orpo does not use it (only dpo does)" in x for x in w), w
    assert any("grpo.beta: the preference task does not read the grpo section" in x for x in w), w
    assert not ignored_settings(RunConfig.from_dict({"task": "preference", "preference": {"loss_type": "ipo"}}))


@pytest.mark.parametrize(
    "args,want",
    [
        (("--gpus", "1000"), "--gpus 1000: this machine has no GPU"),
        (("--precision", "fp16"), "training.precision fp16 needs an NVIDIA GPU, and this machine has none"),
        (("--gpu", "A100"), "--gpu 'A100' matches 2 cards: A100 40GB, A100 80GB"),
        (("--gpu", ""), "--gpu '': no GPU name given"),
        (("--set", "lora.target_modules=q_proj"), "lora.target_modules: give a list of module names, e.g. [q_proj"),
        (("--set", "data.paths=x.jsonl"), "data.paths: give a list, e.g. [x.jsonl]"),
        (("--set", "training.gpus=[-1]"), "training.gpus: GPU indices are 0, 1, 2"),
    ],
    ids=["gpus_1000", "fp16_cpu", "a100_ambiguous", "gpu_empty", "modules_text", "paths_text", "gpu_negative"],
)
def test_impossible_or_ambiguous_settings_are_one_line_refusals(args, want, tmp_path, sage_home):
    p = cli(
        "start", "-m", "tiny-demo", "-t", "qa", "-d", QA, "--name", "x", *args, env={"SAGE_FT_HOME": str(sage_home)}
    )
    line = one_error_line(p)
    assert want in line and "literal[" not in line, line
    assert not (sage_home / "x").exists()


def test_target_modules_as_text_in_yaml_and_estimate_with_an_empty_gpu(tmp_path):
    f = _yaml(tmp_path, {"lora": {"target_modules": "q_proj, v_proj"}}, "mods.yaml")
    line = one_error_line(cli("start", "--config", f, "-d", QA))
    assert "mods.yaml: lora.target_modules: give a list of module names, e.g. [q_proj, v_proj]" in line, line
    line = one_error_line(cli("estimate", "-m", "tiny-demo", "--gpu", ""))
    assert "no GPU name given" in line and "--vram" in line, line


def test_fp16_planned_elsewhere_is_created_then_refused_where_it_trains(tmp_path, sage_home):
    r = _start("-m", "tiny-demo", "-t", "qa", "-d", QA, "--gpu", "T4", "--precision", "fp16", "--name", "t4")
    assert r.exit_code == 0, r.output
    line = one_error_line(cli("run", "t4", env={"SAGE_FT_HOME": str(sage_home)}))
    assert "training.precision fp16 needs an NVIDIA GPU" in line and "another machine" in line, line


# ---- item 6: two launches of one run at once ----------------------------------------------------


@pytest.mark.train
@pytest.mark.parametrize("verb", ["resume", "run"])
def test_two_launches_at_once_start_one_worker_and_refuse_the_other(verb, tmp_path, sage_home):
    r = _start("-m", "tiny-demo", "-t", "qa", "-d", QA, "--name", "twice", "--max-steps", "400")
    assert r.exit_code == 0, r.output
    env = {**os.environ, "SAGE_FT_HOME": str(sage_home)}
    procs = [
        subprocess.Popen(
            [*CLI, verb, "twice", "--detach", "--no-tui"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            stdin=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    outs = [(p.wait(timeout=240), *p.communicate()) for p in procs]
    run = sage_home / "twice"
    try:
        ok = [o for o in outs if o[0] == 0]
        refused = [o for o in outs if o[0] != 0]
        assert len(ok) == 1 and len(refused) == 1, outs
        assert "started twice in the background" in ok[0][1]
        pid = json.loads(RunLayout(run).status.read_text())["pid"]
        err = refused[0][2]
        assert "Traceback" not in err and err.count("error: ") == 1, err
        assert "run twice is already" in err and f"pid {pid}" in err and "attach" in err, err
    finally:
        from sage_ft_tui.engine.runs.control import cancel

        for _ in range(50):
            try:
                cancel(run, wait=60)
                break
            except Exception:
                time.sleep(0.2)


# ---- item 7: the first quickstart, offline, on a CPU box, with --data only -----------------------


@pytest.mark.train
def test_newcomer_quickstart_completes_offline_with_only_data(tmp_path, sage_home):
    rows = [
        {"question": f"What colour is fruit number {i}?", "answer": ["red", "green", "yellow"][i % 3]}
        for i in range(12)
    ]
    data = tmp_path / "my.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    hf = tmp_path / "empty-hf"
    hf.mkdir()
    env = {"HF_HOME": str(hf), "HF_HUB_OFFLINE": "1", "SAGE_FT_HOME": str(sage_home)}
    env.pop("HF_HUB_CACHE", None)
    p = cli("quickstart", "qa", "--data", data, env={**env, "HF_HUB_CACHE": str(hf / "hub")}, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert "Traceback" not in p.stdout + p.stderr
    said = [ln for ln in p.stdout.splitlines() if ln.startswith("model: ")]
    assert len(said) == 1 and said[0].startswith("model: tiny-demo (") and "--model" in said[0], p.stdout[:2000]
    runs = [d for d in sage_home.iterdir() if d.is_dir()]
    assert len(runs) == 1 and json.loads(RunLayout(runs[0]).status.read_text())["state"] == "completed"


def test_default_model_names_the_hub_or_falls_back_offline(tmp_path, monkeypatch):
    from sage_ft_tui.engine.hardware.probe import RecordedBackend
    from sage_ft_tui.engine.recipes.quickstart import default_model

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    gpu = RecordedBackend(RTX4090).snapshot()
    c = default_model("qa", gpu)
    assert c.name == "tiny-demo" and "HF_HUB_OFFLINE=1" in c.line and not c.download, c.line
    assert "Coder" not in default_model("qa", gpu).line.split("(")[0]
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)  # set by an in-process start's preparation
    monkeypatch.setattr("sage_ft_tui.engine.models.resolve.offline_reason", lambda **k: "")
    c = default_model("qa", gpu)
    assert c.name == "Qwen/Qwen2.5-1.5B-Instruct" and c.download and "--model tiny-demo" in c.line, c.line
    assert default_model("code", gpu).name == "Qwen/Qwen2.5-Coder-1.5B-Instruct"
    from sage_ft_tui.engine.recipes.quickstart import download_line

    line = download_line("acme/never-cached")  # a --model that needs the hub is named before any fetch
    assert "acme/never-cached is not cached" in line and "--model tiny-demo" in line, line
    assert download_line("tiny-demo") == ""


# ---- misc: the plan's duration, hints that work ---------------------------------------------------


def test_duration_is_start_up_plus_the_real_tokens_at_the_measured_pace(sage_home):
    """A finished run: 8 s before its first step, 0.001 s per real token. A new run of 60 rows
    of ~70 tokens × 3 epochs is 8 s + 12.6 s, not steps × the capacity of a 2048-token step."""
    from sage_ft_tui.engine.runs.plan import plan_rows, with_duration

    run = sage_home / "done"
    run.mkdir(parents=True)
    lay = RunLayout(run)
    lay.marker.write_text("{}")
    RunConfig.from_dict({"task": "qa", "training": {"max_steps": 10}}).save(lay.config)
    t0 = 1_000_000.0
    events = [{"v": 1, "t": t0 + 8, "kind": "start", "resumed_from_step": 0}]
    events += [{"v": 1, "t": t0 + 8 + s, "kind": "log", "step": s, "tokens": 1000 * s} for s in range(1, 11)]
    lay.events.write_text("".join(json.dumps(e) + "\n" for e in events))
    lay.status.write_text(json.dumps({"state": "completed", "step": 10, "started": t0, "ended": t0 + 18.5}))
    cfg = RunConfig.from_dict({"task": "qa"})  # 4 × 4 × 2048 tokens of capacity a step
    p = plan_rows(cfg, 60, mean_length=70.0)
    p.real_tokens = 60 * 70 * 3
    p = with_duration(p, "tiny-demo", "qa")
    assert p.seconds is not None and abs(p.seconds - (8.5 + 12.6)) < 0.5, (p.seconds, p.basis)
    assert "start-up" in p.basis


def _finished_run(home: Path, name: str, *, adapter: bool) -> Path:
    run = home / name
    run.mkdir(parents=True)
    lay = RunLayout(run)
    lay.marker.write_text("{}")
    RunConfig.from_dict({"task": "qa", "data": {"paths": [str(QA)]}}).save(lay.config)
    lay.status.write_text(json.dumps({"state": "completed", "step": 3, "started": 1.0, "ended": 2.0}))
    if adapter:
        lay.adapter.mkdir()
        (lay.adapter / "adapter_config.json").write_text("{}")
        (lay.adapter / "adapter_model.safetensors").write_bytes(b"")
    return run


def test_a_completed_run_without_its_adapter_never_suggests_resume(sage_home):
    _finished_run(sage_home, "gone", adapter=False)
    env = {"SAGE_FT_HOME": str(sage_home)}
    for args in (("start", "--from-run", "gone", "-d", QA), ("merge", "gone")):
        line = one_error_line(cli(*args, env=env))
        assert "resume" not in line and "run " in line and "config.yaml" in line, line
    assert "already completed" in one_error_line(cli("resume", "gone", env=env))  # why that hint was wrong


def test_merge_into_a_users_folder_never_suggests_force(tmp_path, sage_home):
    _finished_run(sage_home, "done", adapter=True)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    env = {"SAGE_FT_HOME": str(sage_home)}
    for extra in ((), ("--force",)):
        line = one_error_line(cli("merge", "done", "--output", mine, *extra, env=env))
        assert "refusing to replace it" in line and "--force" not in line, line
    assert (mine / "notes.txt").read_text() == "keep me" and len(list(mine.iterdir())) == 1


def test_without_a_gpu_a_small_cached_chat_model_of_the_tasks_kind_is_the_default(tmp_path, monkeypatch, tiny_model):
    """An HF cache holding a small chat model and a small code model: qa takes the chat one
    (never the code model), code the code one; a base model without a chat template is passed
    over for qa; an empty cache gives tiny-demo."""
    import shutil

    from sage_ft_tui.engine.hardware.probe import RecordedBackend
    from sage_ft_tui.engine.recipes.quickstart import default_model

    hub = tmp_path / "hub"
    for repo_id, template in (("acme/Small-Chat", True), ("acme/Small-Coder", True), ("acme/A-Base", False)):
        snap = hub / ("models--" + repo_id.replace("/", "--")) / "snapshots" / "abc"
        shutil.copytree(tiny_model, snap)
        if not template:
            (snap / "chat_template.jinja").unlink()
        (snap.parent.parent / "refs").mkdir()
        (snap.parent.parent / "refs" / "main").write_text("abc")
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    cpu = RecordedBackend(NO_GPU).snapshot()
    qa = default_model("qa", cpu)
    assert qa.name == "acme/Small-Chat" and "cached" in qa.line and "no GPU here" in qa.line, qa.line
    assert default_model("code", cpu).name == "acme/Small-Coder"
    assert default_model("text", cpu).name in ("acme/A-Base", "acme/Small-Chat")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    assert default_model("qa", cpu).name == "tiny-demo"
