"""One transformers model build at a time in a process.

transformers 5 builds a model under process-wide patches that it saves on enter and restores
on exit: torch's default dtype (the config's dtype), `PreTrainedModel.tie_weights` made a
no-op, torch's init functions and `torch.linspace` swapped. Two builds overlapping in two
threads (the wizard's target-module check in a Textual worker thread while another build
runs) restore each other's patched values: the default dtype stays bf16, or `tie_weights` a
no-op, for the rest of the process, and later models come out wrong. Every in-process
`from_pretrained` / `from_config` in the engine runs under `MODEL_BUILD`."""

from __future__ import annotations

import threading

# Re-entrant: a build may load another model inside it (a VLM's parts, a reference model).
MODEL_BUILD = threading.RLock()
