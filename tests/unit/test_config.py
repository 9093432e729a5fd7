import pytest

from sage_ft_tui.engine.config.build import apply_preset
from sage_ft_tui.engine.config.legacy import LoRAConfig, TrainingConfig
from sage_ft_tui.engine.config.presets import PresetConfigs
from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.errors import SageError


def test_roundtrip_yaml(tmp_path):
    cfg = RunConfig.from_dict(
        {
            "task": "qa",
            "model": {"name": "tiny-demo"},
            "data": {"paths": ["a.jsonl"]},
            "training": {"max_steps": 7, "learning_rate": 1e-4},
        }
    )
    cfg.save(tmp_path / "config.yaml")
    again = RunConfig.load(tmp_path / "config.yaml")
    assert again == cfg and again.hash() == cfg.hash()


@pytest.mark.parametrize(
    "raw, words",
    [
        ({"training": {"learnin_rate": 1e-4}}, ["unknown key", "training.learnin_rate"]),
        ({"bogus": 1}, ["unknown key", "bogus"]),
        ({"training": {"learning_rate": -1}}, ["training.learning_rate", "greater than 0"]),
        ({"training": {"max_length": 0}}, ["training.max_length"]),
        ({"training": {"micro_batch_size": "four"}}, ["training.micro_batch_size", "'four'"]),
        ({"model": {"quantization": "3bit"}}, ["model.quantization"]),
        ({"training": {"max_steps": 0}}, ["max_steps"]),
        ({"training": {"eval_steps": 10}}, ["eval_steps", "evaluation data"]),
        ({"task": "text", "data": {"format": "alpaca"}}, ["data.format"]),
        ({"model": {"quantization": "4bit"}, "training": {"precision": "fp32"}}, ["quantization", "fp32"]),
        ({"name": "../escape"}, ["name", "invalid run name"]),
        ({"data": {"validation_split": 0.1, "eval_paths": ["e.jsonl"]}}, ["validation_split", "eval_paths"]),
    ],
)
def test_bad_config_names_the_key(raw, words):
    with pytest.raises(SageError) as ei:
        RunConfig.from_dict(raw, source="config.yaml")
    line = ei.value.oneline()
    assert "\n" not in line
    for w in words:
        assert w in line


def test_yaml_python_tags_are_refused(tmp_path):
    p = tmp_path / "evil.yaml"
    p.write_text("task: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(SageError, match="not valid YAML"):
        RunConfig.load(p)


def test_yaml_syntax_error_has_line(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("task: qa\ntraining:\n  epochs: [1,\n")
    with pytest.raises(SageError) as ei:
        RunConfig.load(p)
    assert f"{p}:" in ei.value.message


def test_set_overrides_and_aliases():
    cfg = RunConfig().with_overrides(["lr=0.001", "training.packing=false", "lora.target_modules=[q_proj, v_proj]"])
    assert cfg.training.learning_rate == 0.001 and cfg.training.packing is False
    assert cfg.lora.target_modules == ["q_proj", "v_proj"]
    with pytest.raises(SageError, match="unknown key 'training.nope'"):
        RunConfig().with_overrides(["training.nope=1"])
    with pytest.raises(SageError, match="key=value"):
        RunConfig().with_overrides(["training.epochs"])


def test_seed_presets_keep_their_values():
    c = PresetConfigs.rtx_3060()
    assert (
        c.load_in_8bit,
        c.max_length,
        c.batch_size,
        c.gradient_accumulation_steps,
        c.gradient_checkpointing,
        c.optim,
    ) == (True, 1024, 1, 16, True, "paged_adamw_8bit")
    c = PresetConfigs.rtx_4090()
    assert (c.load_in_8bit, c.load_in_4bit, c.max_length, c.batch_size, c.gradient_accumulation_steps) == (
        False,
        False,
        2048,
        4,
        4,
    )
    c = PresetConfigs.a100()
    assert (c.max_length, c.batch_size, c.gradient_accumulation_steps, c.bf16) == (4096, 8, 2, True)
    c = PresetConfigs.minimal()
    assert (c.load_in_4bit, c.max_length, c.batch_size, c.gradient_accumulation_steps, c.lora.r, c.lora.lora_alpha) == (
        True,
        512,
        1,
        32,
        4,
        8,
    )
    for name in ("rtx_3060", "rtx_4090", "a100", "minimal"):
        c = getattr(PresetConfigs, name)()
        assert c.learning_rate == 5e-5 and c.num_epochs == 3
    rc = PresetConfigs.rtx_3060(model_name="tiny-demo").to_run_config()
    assert rc.model.quantization == "8bit" and rc.training.grad_accumulation == 16


def test_training_config_maps_both_ways():
    tc = TrainingConfig(model_name="m/x", num_epochs=2, batch_size=3, lora=LoRAConfig(r=32, lora_alpha=64))
    rc = tc.to_run_config()
    assert rc.training.micro_batch_size == 3 and rc.lora.alpha == 64 and rc.model.name == "m/x"
    assert TrainingConfig.from_run_config(rc).lora.r == 32
    with pytest.raises(ValueError):
        TrainingConfig(load_in_8bit=True, load_in_4bit=True)


def test_apply_preset_keeps_model_and_data():
    base = RunConfig.from_dict({"model": {"name": "tiny-demo"}, "data": {"paths": ["x.jsonl"]}})
    out = apply_preset(base, "minimal")
    assert out.model.name == "tiny-demo" and out.data.paths == ["x.jsonl"]
    assert out.model.quantization == "4bit" and out.lora.r == 4 and out.preset == "minimal"
    with pytest.raises(SageError, match="unknown preset"):
        apply_preset(base, "rtx_9999")


def test_every_config_key_is_documented_and_examples_round_trip():
    import yaml

    from sage_ft_tui.engine.config.schema import RunConfig, commented_yaml, field_help

    helps = field_help()
    assert len(helps) > 40 and not [k for k, v in helps.items() if not v.strip()]
    text = commented_yaml()
    assert "# LoRA rank" in text and "# peak learning rate" in text
    assert RunConfig.from_dict(yaml.safe_load(text)) == RunConfig()
