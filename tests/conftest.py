"""Shared fixtures: an isolated runs folder per test, the tiny model and the model zoo (built
once per machine, cached), and the bundled sample data."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from tests import markers

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "sage_ft_tui" / "samples"

# Tests never reach the network and never write outside tmp + the tiny-model cache.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")
# Under pytest-xdist the workers share the cores: each one's torch (and the run workers and servers it
# starts, which inherit this) takes its share of threads, not all of them (oversubscribed, all slow down).
XDIST_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if XDIST_WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // XDIST_WORKERS)))


# Every process a test starts (its setup included), for the cost markers' check (tests/markers.py).
STARTED: list = []
_popen_init = subprocess.Popen.__init__


def _spy(self, args, *a, **kw):
    STARTED.append(args)
    _popen_init(self, args, *a, **kw)


subprocess.Popen.__init__ = _spy  # type: ignore[method-assign]


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = Path(str(item.fspath)).resolve()
        rel = path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else str(path)  # a test's own pytest run
        function = getattr(item, "originalname", item.name)
        for name in sorted(markers.marks_for(rel, function, item.fixturenames)):
            item.add_marker(name)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    STARTED.clear()


@pytest.fixture(autouse=True)
def sage_home(tmp_path, monkeypatch) -> Iterator[Path]:
    """An empty runs home (and logs folder) for each test; at teardown (pass or fail) every worker and server
    the test left running under it, or under the SAGE_FT_HOME it switched to, is stopped."""
    home = tmp_path / "runs"
    monkeypatch.setenv("SAGE_FT_HOME", str(home))
    monkeypatch.setenv("SAGE_FT_LOGS", str(tmp_path / "logs"))  # the TUI's error log: never the real ~/.cache
    yield home
    from sage_ft_tui.engine.models.build_lock import MODEL_BUILD
    from tests.cleanup import stop_leftovers

    with MODEL_BUILD:  # a build still running in a thread the test left behind ends before the next test
        pass

    stop_leftovers([home, Path(os.environ.get("SAGE_FT_HOME", home))], tmp_path)


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    from sage_ft_tui.engine.models.tiny import ensure_tiny_model

    return ensure_tiny_model()


@pytest.fixture(scope="session")
def zoo() -> dict[str, Path]:
    """The model zoo (tests/zoo): one tiny random-weight folder per real instruct family (Qwen,
    Llama 3, Gemma, Mistral, Phi, SmolLM2, DeepSeek-R1-Distill), built once per machine and zoo
    version, cached under $SAGE_FT_ZOO_CACHE (else ~/.cache/sage-ft-tui)."""
    from tests.zoo.cache import ensure_zoo

    return ensure_zoo()


@pytest.fixture(scope="session")
def vlm_zoo() -> dict[str, Path]:
    """The zoo's vision-language models (tests/zoo/vlm.py): name -> folder, built once per
    machine and zoo version beside the text zoo."""
    from tests.zoo.cache import ensure_vlm_zoo

    return ensure_vlm_zoo()


@pytest.fixture(scope="session")
def zoo_family(zoo):
    """`zoo_family(name)` → ZooModel(name, family spec, folder): the spec holds the facts to
    assert (end_of_turn, system, drops_reasoning, gguf_arch, gen_eos, ...)."""
    from tests.zoo.cache import ZooModel
    from tests.zoo.families import family

    def get(name: str) -> ZooModel:
        return ZooModel(name, family(name), zoo[name])

    return get


@pytest.fixture(scope="session")
def sample_data() -> dict[str, Path]:
    return {
        "instruction": SAMPLES / "instruction_alpaca.jsonl",
        "qa": SAMPLES / "qa.jsonl",
        "chat": SAMPLES / "chat_messages.jsonl",
        "sharegpt": SAMPLES / "chat_sharegpt.json",
        "prompt_completion": SAMPLES / "prompt_completion.csv",
        "text": SAMPLES / "text.txt",
    }


@pytest.fixture(autouse=True)
def declared_cost(request):
    """Fails a test that starts a process or a training run its markers do not declare
    (SAGE_FT_TEST_COSTS=FILE: record what each test started there instead)."""
    yield
    marks = {m.name for m in request.node.iter_markers()}
    report = os.environ.get("SAGE_FT_TEST_COSTS")
    if report:
        needs = sorted(set().union(*(markers.cost_of(a) for a in STARTED)) - marks) if STARTED else []
        with open(report, "a") as fh:
            fh.write(json.dumps({"test": request.node.nodeid, "needs": needs}) + "\n")
        return
    why = markers.check_started(request.node.nodeid, marks, list(STARTED))
    if why:
        pytest.fail(why, pytrace=False)
