"""engine/models/catalog.py, listing.py and resolve.offline_reason: what the Model step lists (cache,
folders here, last use by a run), what it marks as unavailable offline, and how a typed
folder / hub id is checked — on a real cache layout and real folders, no network."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from sage_ft_tui.engine.deploy.net import free_port
from sage_ft_tui.engine.models import resolve
from sage_ft_tui.engine.models.catalog import (
    WAY_FORWARD,
    check_ref,
    is_search,
    local_folders,
    matches,
    unavailable,
)
from sage_ft_tui.engine.models.known import DEFAULTS
from sage_ft_tui.engine.models.listing import catalogue
from tests.tui import factory

OFF = "HF_HUB_OFFLINE=1"
CFG = {"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "num_hidden_layers": 2, "vocab_size": 100}


def _model(folder: Path, weights: bool = True) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(CFG))
    if weights:
        (folder / "model.safetensors").write_bytes(b"\0" * 16)
    return folder


@pytest.fixture
def here(tmp_path, monkeypatch, tiny_model) -> Path:
    """The TUI's fixed world (a cache with two models, four runs) and a project folder."""
    for key, value in factory.prepare(tmp_path / "world").items():
        monkeypatch.setenv(key, value)
    project = tmp_path / "world" / "project"
    _model(project / "models" / "mine")
    _model(project / "a" / "b" / "c" / "too-deep")
    _model(project / ".hidden" / "m")
    _model(project / "models" / "no-weights", weights=False)
    (project / "models" / "empty").mkdir()
    return project


def test_catalogue_lists_cache_and_folders_with_last_use(here):
    entries = catalogue(cwd=here)
    ids = [e.id for e in entries]
    assert ids[:4] == ["tiny-demo", *DEFAULTS]
    by = {e.id: e for e in entries}
    mine = str((here / "models" / "mine").resolve())
    assert mine in by and by[mine].source == "path" and by[mine].offline
    assert not any("too-deep" in i or "/.hidden/" in i or "no-weights" in i for i in ids)
    qwen = by["Qwen/Qwen2.5-Coder-1.5B-Instruct"]
    assert qwen.offline and qwen.size_bytes == 3_087_467_144 and qwen.size_label == "2.9 GiB"
    assert qwen.last_run == "text-qwen2.5-coder-1.5b-instruct-20251230-080000" and qwen.last_used
    assert by["meta-llama/Llama-3.2-1B-Instruct"].last_used is None  # no run here used it
    assert "models--" not in " ".join(ids) and len(catalogue()) == len(entries) - 1  # folders only with cwd


def test_local_folders_stay_shallow_and_bounded(here):
    found = [p.name for p in local_folders(here)]
    assert "mine" in found and "too-deep" not in found and "m" not in found
    assert local_folders(here, limit=1) == []  # the first folder looked at is the project itself


def test_offline_marks_uncached_ids_and_says_how_to_go_on(here):
    known = {e.id: e for e in catalogue(cwd=here)}
    uncached = known["Qwen/Qwen2.5-7B-Instruct"]
    assert unavailable(uncached, OFF) == "not cached — offline" and unavailable(uncached, "") == ""
    assert unavailable(known["Qwen/Qwen2.5-Coder-1.5B-Instruct"], OFF) == ""
    res = check_ref("Qwen/Qwen2.5-7B-Instruct", known, OFF)
    assert not res.ok and OFF in res.message and res.hint == WAY_FORWARD
    new = check_ref("some-org/new-model", known, OFF)
    assert not new.ok and "not cached — offline" in new.message
    online = check_ref("some-org/new-model", known, "")
    assert online.ok and "downloaded on first use" in online.message


def test_typed_refs_are_checked_as_typed(here):
    known = {e.id: e for e in catalogue(cwd=here)}
    cached = check_ref("qwen/qwen2.5-coder-1.5b-instruct", known, OFF)  # any case
    assert cached.ok and cached.entry.id == "Qwen/Qwen2.5-Coder-1.5B-Instruct" and "local cache" in cached.message
    folder = check_ref("models/mine", known, OFF, cwd=here)
    assert folder.ok and "model folder" in folder.message and "LlamaForCausalLM" in folder.message
    assert "no such folder in models/" in check_ref("models/min", known, OFF, cwd=here).message
    assert "no such folder" in check_ref("/no/such/model", known, OFF).message
    assert "no config.json" in check_ref("models/empty", known, OFF, cwd=here).message
    bare = check_ref("models/no-weights", known, OFF, cwd=here)
    assert not bare.ok and "no weights" in bare.message


def test_search_words_and_matching(here):
    llama = next(e for e in catalogue(cwd=here) if e.id.startswith("meta-llama"))
    assert matches(llama, "llama 1b") and matches(llama, "LlamaForCausal") and not matches(llama, "qwen")
    assert is_search("llama") and is_search("coder 7b")
    assert not is_search("org/name") and not is_search("./m") and not is_search("~/m") and not is_search("tiny-demo")


def test_offline_reason_switches_and_the_reachability_check(monkeypatch):
    monkeypatch.setattr(resolve, "_probed", {})
    for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve.offline_reason() == OFF
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "true")
    assert resolve.offline_reason() == "TRANSFORMERS_OFFLINE=1"
    monkeypatch.delenv("TRANSFORMERS_OFFLINE")
    assert resolve.offline_reason(probe=False) == ""
    closed = free_port()  # nothing listens there: "the hub" cannot be reached
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed}")
    assert "cannot be reached" in resolve.offline_reason()
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        monkeypatch.setenv("HF_ENDPOINT", f"http://localhost:{srv.getsockname()[1]}")
        assert resolve.offline_reason() == ""


def test_a_hub_id_is_found_in_the_cache_the_environment_names_now(tmp_path, monkeypatch):
    """huggingface_hub reads HF_HUB_CACHE once, when first imported; a later change (a test
    world, a wrapper that sets it) was ignored, so a cached model was 'not in the cache'."""
    import huggingface_hub  # noqa: F401  (imported first, with the old value)

    repo = tmp_path / "hub" / "models--org--tiny"
    snap = _model(repo / "snapshots" / "abc123")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve.model_dir("org/tiny") == snap
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("HF_HOME", raising=False)
    from sage_ft_tui.engine.models.hub_cache import hf_cache_dir

    assert hf_cache_dir() == tmp_path / "xdg" / "huggingface" / "hub"  # huggingface_hub's own rule
