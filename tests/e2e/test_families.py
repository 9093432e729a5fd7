"""Every zoo family end to end, offline on CPU: start (data checked and rendered) → the
real detached worker trains → merge (self-checked) → `transformers serve` → the real
`openai` client chats with a system message → export GGUF f16, q8_0 (and q4_k_m with the
llama.cpp binding) → llama.cpp itself loads each file with identical tokenization.

The families share the module's phases so the two cores stay busy: workers train a few at
a time, servers start together. Each phase asserts per family and names it."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.zoo.families import FAMILIES

pytestmark = [pytest.mark.train, pytest.mark.timeout(600)]  # over the default 180 s on a busy machine

# SAGE_FT_ZOO_ONLY=qwen3,phi-4-mini runs a few families (when working on one)
NAMES = [n for n in FAMILIES if n in os.environ.get("SAGE_FT_ZOO_ONLY", n).split(",")]
SYSTEM = "You answer in one short sentence."
ROWS = [
    [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "What is the capital of Kenya?"},
        {"role": "assistant", "content": "Nairobi is the capital of Kenya."},
        {"role": "user", "content": "And of Peru?"},
        {"role": "assistant", "content": "Lima is the capital of Peru."},
    ],
    [
        {"role": "user", "content": "Name a primary colour."},
        {"role": "assistant", "content": "Red is a primary colour."},
    ],
    [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "What do bees make?"},
        {"role": "assistant", "content": "Bees make honey."},
    ],
    [
        {"role": "user", "content": "How many legs has a spider?"},
        {"role": "assistant", "content": "A spider has eight legs."},
    ],
]
PARALLEL_WORKERS = 3


def _timed(times: dict, phase: str, name: str):
    class T:
        def __enter__(self):
            self.t = time.time()

        def __exit__(self, *a):
            times.setdefault(phase, {})[name] = round(time.time() - self.t, 1)

    return T()


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("families-home")


@pytest.fixture(scope="module")
def flow(home, zoo, tmp_path_factory):
    """start + run for every family, then merge; {name: run folder} and the phase times."""
    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.deploy.merge import merge_run
    from sage_ft_tui.engine.runs.control import launch
    from sage_ft_tui.engine.runs.start import start_run
    from sage_ft_tui.engine.runs.state import wait_for_end

    data = tmp_path_factory.mktemp("families-data") / "chats.jsonl"
    data.write_text("".join(json.dumps({"messages": r}) + "\n" for r in ROWS * 3), encoding="utf-8")
    old = os.environ.get("SAGE_FT_HOME")
    os.environ["SAGE_FT_HOME"] = str(home)
    runs: dict[str, Path] = {}
    reports: dict[str, dict] = {}
    times: dict = {}
    try:
        for name in NAMES:
            cfg = RunConfig.from_dict(
                {
                    "name": f"fam-{name}",
                    "task": "chat",
                    "model": {"name": str(zoo[name])},
                    "data": {"paths": [str(data)], "validation_split": 0},
                    "lora": {"r": 4, "alpha": 8},
                    "training": {
                        "max_steps": 2,
                        "micro_batch_size": 4,
                        "grad_accumulation": 1,
                        "max_length": 256,
                        "learning_rate": 5e-3,
                        "logging_steps": 1,
                        "save_steps": 100,
                    },
                }
            )
            with _timed(times, "start", name):
                started = start_run(cfg, home=home, launch=False)
            runs[name] = started.run
            reports[name] = json.loads((started.run / "data" / "data_report.json").read_text())
        pending = list(NAMES)
        active: list[str] = []
        t0: dict[str, float] = {}
        while pending or active:
            while pending and len(active) < PARALLEL_WORKERS:
                n = pending.pop(0)
                t0[n] = time.time()
                launch(runs[n])
                active.append(n)
            n = active.pop(0)
            state = wait_for_end(runs[n], timeout=600)
            times.setdefault("train", {})[n] = round(time.time() - t0[n], 1)
            assert state == "completed", f"{n}: {state}\n" + (runs[n] / "train.log").read_text()[-3000:]
        merged = {}
        for name in NAMES:
            with _timed(times, "merge", name):
                merged[name] = merge_run(runs[name])
    finally:
        if old is None:
            os.environ.pop("SAGE_FT_HOME", None)
        else:
            os.environ["SAGE_FT_HOME"] = old
    yield {"runs": runs, "reports": reports, "merged": merged, "times": times}
    print("\nfamily phase times (s):", json.dumps(flow_times(times)))


def flow_times(times: dict) -> dict:
    return {phase: {"total": round(sum(v.values()), 1), **v} for phase, v in times.items()}


@pytest.mark.parametrize("name", NAMES)
def test_trained_and_merged(flow, name):
    fam = FAMILIES[name]
    run = flow["runs"][name]
    report = flow["reports"][name]
    assert flow["merged"][name]["self_check"]["passed"], flow["merged"][name]
    warnings = " | ".join(report["warnings"])
    if fam.system == "none":  # the fold is said once, counting the rows
        assert "has no system role" in warnings and "6 rows" in warnings
    if fam.system == "last-user":
        assert "one example per answer" in warnings and "last user turn" in warnings
    events = [json.loads(ln) for ln in (run / "events.jsonl").read_text().splitlines() if ln.strip()]
    assert any(e["kind"] == "log" and e.get("loss") is not None for e in events)
    tmpl = (run / "merged" / "chat_template.jinja").read_text(encoding="utf-8")
    assert ("_sage_sys" in tmpl) == (fam.system == "none")


@pytest.fixture(scope="module")
def served(flow):
    """A `transformers serve` per family, started together; stopped after."""
    from sage_ft_tui.engine.deploy import serve as sv
    from sage_ft_tui.engine.deploy.serve_command import serve_command

    runs = flow["runs"]

    def one(name):
        t = time.time()
        info = sv.start(serve_command(runs[name], backend="transformers", port=0), timeout=300)
        flow["times"].setdefault("serve", {})[name] = round(time.time() - t, 1)
        return name, info

    infos: dict[str, dict] = {}
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            for name, info in pool.map(one, NAMES):
                infos[name] = info
        yield infos
    finally:
        for name in NAMES:
            try:
                sv.stop(runs[name])
            except Exception:
                pass


@pytest.mark.parametrize("name", NAMES)
def test_chat_with_a_system_message(served, flow, name):
    from openai import OpenAI

    info = served[name]
    client = OpenAI(base_url=info["base_url"], api_key=info.get("api_key") or "none", max_retries=0, timeout=120)
    reply = client.chat.completions.create(
        model=info["model"],
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": "What do bees make?"}],
        max_tokens=4,
        temperature=0,
    )
    assert reply.choices and reply.choices[0].message is not None, name
    stream = client.chat.completions.create(
        model=info["model"],
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Name a colour."}],
        max_tokens=3,
        temperature=0,
        stream=True,
    )
    assert sum(1 for _ in stream) >= 1, name


@pytest.mark.parametrize("name", NAMES)
def test_export_gguf_checked_by_llama_cpp(flow, zoo, name):
    """`export` of the trained run: f16, q8_0 and q4_k_m, each loaded by llama.cpp itself with
    identical tokenization (and a Modelfile that renders like the template) — or refused in one
    line naming what of the tokenizer a GGUF cannot carry, with nothing written."""
    from sage_ft_tui.engine.errors import SageError
    from sage_ft_tui.engine.export import llama
    from sage_ft_tui.engine.export.check import unrepresentable
    from sage_ft_tui.engine.export.run import export_run
    from sage_ft_tui.engine.runs.layout import RunLayout

    run = flow["runs"][name]
    lay = RunLayout(run)
    causes = unrepresentable(zoo[name])
    quants = ("f16", "q8_0", "q4_k_m") if llama.available() else ("f16", "q8_0")
    for q in quants:
        t = time.time()
        try:
            entry = export_run(run, fmt="gguf", quant=q)
        except SageError as e:
            assert causes, f"{name}/{q}: refused without a tokenizer cause: {e.oneline()}"
            assert "tokenizes the exported file differently" in e.oneline() and all(c in e.oneline() for c in causes)
            assert not lay.export_gguf(q).exists()
            continue
        finally:
            flow["times"].setdefault("export", {})[f"{name}/{q}"] = round(time.time() - t, 1)
        assert lay.export_gguf(q).is_file() and lay.modelfile.is_file(), name
        if llama.available():
            chk = entry["check"]
            assert chk["by"] and chk["tokenization"]["identical"], (name, q, chk)
