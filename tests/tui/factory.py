"""Deterministic apps for snapshot tests and screenshots: every screen from fixed data.

`prepare(root)` lays out a fixed world under `root` (runs, a project folder with data, a
Hugging Face cache with two fake models) and returns the environment to use;
`make_app(name, root)` builds a static (`live=False`) app showing that screen. Static
means engine calls run inline and nothing polls, so frames do not depend on timing.
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
    "hardware",
    "review",
    "monitor",
    "monitor_failed",
    "runs",
    "queue",
    "merge",
    "serve",
    "chat",
)

RUNNING = "instruction-qwen2.5-coder-7b-instruct-20260101-090000"
FAILED = "chat-qwen2.5-7b-instruct-20251231-120000"
DONE = "qa-tiny-demo-20251231-170200"
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


def prepare(root: Path) -> dict[str, str]:
    root = Path(root)
    home, project, hf = root / "runs", root / "project", root / "hf"
    if not home.exists():
        shutil.copytree(FIXTURES / "runs", home)
        _queue(home)
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
        if name == "queue":
            from sage_ft_tui.tui.screens.queue import QueueScreen

            return [QueueScreen()]
        if name in ("merge", "serve", "chat"):
            from sage_ft_tui.tui.routes import ROUTES

            return [ROUTES[name][0](str(home / DONE))]
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

    return SageApp(live=False, clock=lambda: NOW, cwd=str(project), initial=initial)
