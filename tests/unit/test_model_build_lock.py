"""Model builds in one process, one at a time (engine/models/build_lock.py).

transformers 5 builds a model under process-wide patches (torch's default dtype, `tie_weights`
made a no-op, torch's init functions swapped) that it saves on enter and restores on exit: two
builds overlapping in two threads (the wizard's target-module check in a Textual worker while
another build runs) restore each other's values, and the process keeps, say, bf16 as its
default dtype: every later model and tensor comes out wrong (the losses of 3e+19 and "Cannot
copy out of meta tensor" seen under pytest-xdist). Without the lock this fails in about half
the rounds."""

from __future__ import annotations

import json
import threading

import pytest

torch = pytest.importorskip("torch")


def test_builds_in_two_threads_leave_the_process_and_the_next_model_intact(tiny_model, tmp_path):
    from transformers import PreTrainedModel

    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.models.modules import module_names
    from sage_ft_tui.engine.train.model import load_model

    # A hub-like config (bf16, more layers): its empty build on the meta device takes a while.
    bf16 = tmp_path / "bf16"
    bf16.mkdir()
    cfg = json.loads((tiny_model / "config.json").read_text())
    cfg.update(dtype="bfloat16", num_hidden_layers=24)
    (bf16 / "config.json").write_text(json.dumps(cfg))
    tie_weights = PreTrainedModel.tie_weights
    module_names(bf16)  # the first build imports the model's code: not part of the race

    for _ in range(8):
        worker = threading.Thread(target=lambda: [module_names(bf16) for _ in range(3)], daemon=True)
        worker.start()
        while worker.is_alive():  # float32 builds in this thread meanwhile
            module_names(tiny_model)
        worker.join()
        assert torch.get_default_dtype() == torch.float32, "a build left its dtype as the process default"
        assert PreTrainedModel.tie_weights is tie_weights

    run = RunConfig.from_dict({"name": "t", "model": {"name": str(tiny_model), "dtype": "float32"}})
    model = load_model(run, tiny_model)
    head, emb = model.get_output_embeddings().weight, model.get_input_embeddings().weight
    assert head.device.type == "cpu" and head.dtype == torch.float32
    assert head.data_ptr() == emb.data_ptr() and torch.isfinite(head).all()
