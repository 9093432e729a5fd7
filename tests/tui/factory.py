"""Deterministic apps for snapshot tests and screenshots: every screen from fixed data.

`prepare(root)` lays out a fixed world under `root` (runs, a project folder with data, a
Hugging Face cache with two fake models) and returns the environment to use;
`make_app(name, root)` builds a static (`live=False`) app showing that screen. Static
means engine calls run inline and nothing polls, so frames do not depend on timing.
`data_images` adds rows with PIL-drawn pictures and the zoo's tiny LLaVA under a hub name
(`_vision_world`); pictures are half blocks there (SAGE_FT_IMAGES=halfcell).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"
T0 = 1767258000.0
NOW = T0 + 560.0  # the clock the static app shows (the running fixture run is ~9 min in)
SCREENS = (
    "home",
    "task",
    "model",
    "data",
    "data_bad",
    "data_images",
    "hardware",
    "review",
    "monitor",
    "monitor_failed",
    "runs",
    "queue",
    "sweep",
    "merge",
    "serve",
    "chat",
    "compare",
    "method",
)

RUNNING = "instruction-qwen2.5-coder-7b-instruct-20260101-090000"
FAILED = "chat-qwen2.5-7b-instruct-20251231-120000"
DONE = "qa-tiny-demo-20251231-170200"
SWEEP = "lr-r"
OTHER = "text-qwen2.5-coder-1.5b-instruct-20251230-080000"
QUEUED = ("qa-llama-3.2-1b-instruct-20260101-093000", "qa-llama-3.2-1b-instruct-20260101-093100")


def _queue(home: Path) -> None:
    """A queue overnight: one done, one training, one failed, two waiting for a GPU."""
    from sage_ft_tui.engine.fsutil import GiB, atomic_write_json
    from sage_ft_tui.engine.hardware.probe import RecordedBackend
    from sage_ft_tui.engine.queue.fit import Active, place
    from sage_ft_tui.engine.queue.state import QueueEntry, QueueFiles

    snap = RecordedBackend(FIXTURES / "hw_2xh100.json").snapshot()
    waiting = place(snap, [Active(RUNNING, {0, 1})], need_bytes=int(18.2 * GiB)).wait
    e = [
        QueueEntry(
            home / DONE, "done", "overnight", [0], T0 - 4000, started=T0 - 3900, ended=T0 - 1200, result="completed"
        ),
        QueueEntry(home / RUNNING, "started", "overnight", [0, 1], T0 - 3990, started=T0),
        QueueEntry(
            home / FAILED,
            "failed",
            None,
            None,
            T0 - 3000,
            started=T0 - 1200,
            ended=T0 - 60,
            result="failed",
            note="CUDA out of memory at step 35 (micro batch 8)",
        ),
        QueueEntry(home / QUEUED[0], "queued", "sweep-lr", None, T0 + 100, note=waiting),
        QueueEntry(home / QUEUED[1], "queued", "sweep-lr", [1], T0 + 101),
    ]
    atomic_write_json(QueueFiles(home).state, {"v": 1, "entries": [x.to_dict() for x in e]})


def _sweep(home: Path) -> None:
    """A sweep overnight over the fixture runs: one complete, one pruned, one failed, one training."""
    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.fsutil import atomic_write_json
    from sage_ft_tui.engine.sweep.params import parse_param
    from sage_ft_tui.engine.sweep.store import SweepSpec, save_spec, sweep_dir

    lay = sweep_dir(SWEEP, home)
    params = [parse_param("training.learning_rate=loguniform:1e-5,1e-3"), parse_param("lora.r=choice:8,16,32")]
    save_spec(lay, SweepSpec(SWEEP, RunConfig().model_dump(mode="json"), params, trials=6, created=T0 - 5000))
    rows = [
        (DONE, "complete", 2.4e-4, 16, 1.183, 30, "eval_loss", ""),
        (OTHER, "pruned", 1.1e-5, 8, 2.07, 10, "eval_loss", "pruned at step 10: its eval loss was above the median"),
        (FAILED, "failed", 9.0e-4, 32, None, None, None, "the run failed: CUDA out of memory at step 35"),
        (RUNNING, "running", 1.6e-4, 32, None, None, None, ""),
    ]
    trials = [
        {
            "number": i,
            "run": str(home / run),
            "params": {"training.learning_rate": lr, "lora.r": r},
            "state": state,
            "value": value,
            "step": step,
            "objective": objective,
            "note": note,
        }
        for i, (run, state, lr, r, value, step, objective, note) in enumerate(rows)
    ]
    atomic_write_json(lay.trials, {"sweep": SWEEP, "updated": T0, "trials": trials})
    atomic_write_json(lay.driver, {"pid": 1, "host": "fixture", "started": T0 - 5000, "state": "stopped"})


def _fake_model(cache: Path, repo: str, cfg: dict, shapes: dict[str, list[int]], size: int) -> None:
    d = cache / f"models--{repo.replace('/', '--')}"
    snap = d / "snapshots" / "0123456789abcdef"
    snap.mkdir(parents=True)
    (d / "refs").mkdir()
    (d / "refs" / "main").write_text("0123456789abcdef")
    (d / "blobs").mkdir()
    (snap / "config.json").write_text(json.dumps(cfg))
    header = json.dumps({k: {"dtype": "BF16", "shape": s, "data_offsets": [0, 0]} for k, s in shapes.items()}).encode()
    blob = d / "blobs" / "weights"
    with open(blob, "wb") as fh:
        fh.write(struct.pack("<Q", len(header)) + header)
    os.truncate(blob, size)  # sparse: the size on disk a real download would show
    (snap / "model.safetensors").symlink_to(blob)


VLM_REPO = "llava-hf/llava-interleave-qwen-0.5b-hf"  # the zoo's tiny LLaVA stands in for it


def _vision_world(root: Path) -> Path:
    """Receipts with their pictures (drawn by PIL, the same pixels every time) and a
    vision-language model in the world's HF cache (the zoo's tiny LLaVA, linked in)."""
    from PIL import Image, ImageDraw

    from tests.zoo.cache import ensure_vlm_zoo

    folder = root / "vision"
    if folder.exists():
        return folder
    (folder / "images").mkdir(parents=True)
    for name, (w, h), ink in (("receipt.png", (240, 320), (40, 90, 200)), ("chart.png", (320, 160), (200, 90, 40))):
        im = Image.new("RGB", (w, h), (250, 250, 245))
        draw = ImageDraw.Draw(im)
        draw.rectangle((10, 10, w - 10, 50), fill=ink)
        for i, y in enumerate(range(70, h - 20, 30)):
            draw.rectangle((20, y, 20 + (w - 60) * (3 + i % 3) // 5, y + 12), fill=(70, 70, 70))
        im.save(folder / "images" / name)
    rows = [
        ("<image>What is the total on this receipt?", "The total is 42.50.", ["images/receipt.png"]),
        (
            "<image><image>Does the chart match the receipt?",
            "Yes: both say 42.50.",
            ["images/chart.png", "images/receipt.png"],
        ),
    ]
    with open(folder / "receipts.jsonl", "w") as fh:
        for q, a, images in rows:
            msgs = [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
            fh.write(json.dumps({"messages": msgs, "images": images}) + "\n")
    src = ensure_vlm_zoo()["llava-interleave-qwen"]
    d = root / "hf" / f"models--{VLM_REPO.replace('/', '--')}"
    snap = d / "snapshots" / "0123456789abcdef"
    snap.mkdir(parents=True)
    (d / "refs").mkdir()
    (d / "refs" / "main").write_text("0123456789abcdef")
    for f in src.iterdir():
        (snap / f.name).symlink_to(f)
    return folder


def prepare(root: Path) -> dict[str, str]:
    root = Path(root)
    home, project, hf = root / "runs", root / "project", root / "hf"
    if not home.exists():
        shutil.copytree(FIXTURES / "runs", home)
        _queue(home)
        _sweep(home)
        shutil.copytree(FIXTURES / "data", project)
        hf.mkdir(parents=True)
        _fake_model(
            hf,
            "meta-llama/Llama-3.2-1B-Instruct",
            {"architectures": ["LlamaForCausalLM"], "hidden_size": 2048, "num_hidden_layers": 16, "vocab_size": 128256},
            {"model.embed_tokens.weight": [128256, 2048], "model.layers.stack": [16, 60817408]},
            2_471_645_608,
        )
        _fake_model(
            hf,
            "Qwen/Qwen2.5-Coder-1.5B-Instruct",
            {"architectures": ["Qwen2ForCausalLM"], "hidden_size": 1536, "num_hidden_layers": 28, "vocab_size": 151936},
            {"model.embed_tokens.weight": [151936, 1536], "model.layers.stack": [28, 46738944]},
            3_087_467_144,
        )
    return {
        "SAGE_FT_HOME": str(home),
        "SAGE_FT_HW_RECORDED": str(FIXTURES / "hw_2xh100.json"),
        "HF_HUB_CACHE": str(hf),
        "HF_HUB_OFFLINE": "1",
        "SAGE_FT_IMAGES": "halfcell",  # pictures as half blocks: the same frame on every terminal
    }


def make_app(name: str, root: Path):
    from sage_ft_tui.tui.app import SageApp

    root = Path(root)
    project, home = root / "project", root / "runs"

    def initial(app):
        s = app.state
        if name == "home":
            return []
        if name == "runs":
            from sage_ft_tui.tui.screens.runs import RunsScreen

            return [RunsScreen()]
        if name == "sweep":
            from sage_ft_tui.tui.screens.sweep import SweepScreen

            return [SweepScreen(SWEEP)]
        if name == "queue":
            from sage_ft_tui.tui.screens.queue import QueueScreen

            return [QueueScreen()]
        if name in ("merge", "serve", "chat"):
            from sage_ft_tui.tui.routes import ROUTES

            return [ROUTES[name][0](str(home / DONE))]
        if name == "compare":
            from sage_ft_tui.tui.screens.compare import CompareScreen, join_runs

            return [CompareScreen(join_runs([str(home / DONE), str(home / RUNNING)]))]
        if name.startswith("monitor"):
            from sage_ft_tui.tui.screens.monitor import MonitorScreen

            return [MonitorScreen(str(home / (FAILED if name == "monitor_failed" else RUNNING)))]
        s.task = "instruction"
        if name == "task":
            from sage_ft_tui.tui.screens.wizard.task import TaskScreen

            return [TaskScreen()]
        s.model = "tiny-demo"
        if name == "model":
            from sage_ft_tui.tui.screens.wizard.model import ModelScreen

            s.model = None
            return [ModelScreen()]
        from sage_ft_tui.tui.screens.wizard.data import inspect

        if name == "data_images":  # a vision-language model's Data step: rows with their pictures
            from sage_ft_tui.tui.screens.wizard.data import DataScreen

            data_file = root / "vision" / "receipts.jsonl"
            s.task, s.model, s.data_paths = "chat", VLM_REPO, [str(data_file)]
            s.overrides["training.max_length"] = 512
            s.inspection = inspect([str(data_file)], s.task, s.model, 512)
            return [DataScreen()]
        if name == "method":  # a preference run's Method step, on the bundled pairs
            from sage_ft_tui.engine.data.samples import sample_path
            from sage_ft_tui.tui.screens.wizard.method import MethodScreen

            pairs = str(sample_path("preference_pairs.jsonl"))
            s.task, s.data_paths = "preference", [pairs]
            s.inspection = inspect([pairs], "preference", "tiny-demo", 512)
            return [MethodScreen()]
        data_file = project / ("broken.jsonl" if name == "data_bad" else "instructions.jsonl")
        s.data_paths = [str(data_file)]
        s.inspection = inspect([str(data_file)], "instruction", "tiny-demo", 64 if name.startswith("data") else 2048)
        if name.startswith("data"):
            from sage_ft_tui.tui.screens.wizard.data import DataScreen

            s.overrides["training.max_length"] = 64
            return [DataScreen()]
        if name == "hardware":
            from sage_ft_tui.tui.screens.wizard.hardware import HardwareScreen

            return [HardwareScreen()]
        from sage_ft_tui.tui.screens.wizard.review import ReviewScreen

        s.name = "my-first-run"
        s.overrides["training.max_steps"] = 60
        return [ReviewScreen()]

    cwd = _vision_world(root) if name == "data_images" else project
    return SageApp(live=False, clock=lambda: NOW, cwd=str(cwd), initial=initial)
