"""Run the real worker as N CPU (gloo) ranks through torch.distributed.run, as a test does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sage_ft_tui.engine.deploy.net import free_port


def torchrun_worker(run: Path, *, nproc: int = 2, timeout: int = 400) -> subprocess.CompletedProcess:
    """The run's worker on `nproc` CPU ranks (CUDA hidden, one thread each, this machine's
    probe, any free rendezvous port); the caller asserts on the result."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}  # gloo on CPU, even beside GPUs
    env.pop("SAGE_FT_HW_RECORDED", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc)]
    cmd += ["--master_port", str(free_port()), "-m", "sage_ft_tui.engine.train.worker", str(run)]
    return subprocess.run(cmd, cwd=run, env=env, capture_output=True, text=True, timeout=timeout)
