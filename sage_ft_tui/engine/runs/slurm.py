"""`run RUN --slurm NODES`: hand a run to the cluster's own scheduler.

The batch script (`train.distributed.slurm_script`) is always written into the run folder
(`RunLayout.slurm_script`); when `sbatch` is on PATH it is submitted and the job id read from
sbatch's answer, otherwise the caller prints how to submit it. Our queue is for one machine;
on a cluster Slurm decides when and where the run trains.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from sage_ft_tui.engine.errors import SageError, clip
from sage_ft_tui.engine.fsutil import atomic_write_text
from sage_ft_tui.engine.runs.control import check_can_train
from sage_ft_tui.engine.runs.layout import RunLayout
from sage_ft_tui.engine.train.distributed import slurm_script

SBATCH_TIMEOUT_S = 60.0


@dataclass
class SlurmJob:
    script: Path
    submitted: bool  # False: sbatch is not on PATH; the script waits to be submitted by hand
    job_id: Optional[str] = None
    answer: str = ""  # sbatch's own line ("Submitted batch job 123")


def submit_slurm(run: Path, nodes: int, gpus_per_node: int, *, submit: bool = True) -> SlurmJob:
    """Write the run's sbatch script; submit it with `sbatch` when installed (and `submit`)."""
    run = Path(run)
    check_can_train(run)  # a finished or running run is refused before anything is written or submitted
    path = RunLayout(run).slurm_script
    atomic_write_text(path, slurm_script(run, nodes, gpus_per_node), mode=0o755)
    sbatch = shutil.which("sbatch") if submit else None
    if sbatch is None:
        return SlurmJob(path, submitted=False)
    try:
        p = subprocess.run(
            [sbatch, str(path)],
            cwd=str(run),
            capture_output=True,
            text=True,
            timeout=SBATCH_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SageError(
            f"sbatch {path} did not answer ({e.__class__.__name__})",
            hint=f"the script is written; submit it yourself: sbatch {path}",
            kind="hardware",
        ) from None
    answer = clip(p.stdout.strip() or p.stderr.strip())
    if p.returncode != 0:
        raise SageError(
            f"sbatch refused {path}: {clip(p.stderr.strip() or p.stdout.strip()) or f'exit {p.returncode}'}",
            hint=f"fix what Slurm says (partition, GPUs per node, time limit) and submit it again: sbatch {path}",
            kind="hardware",
        )
    m = re.search(r"\b(\d+)\b", p.stdout)
    return SlurmJob(path, submitted=True, job_id=m.group(1) if m else None, answer=answer)


__all__ = ["SlurmJob", "submit_slurm"]
