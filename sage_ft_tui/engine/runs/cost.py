"""How long a run takes on a card and what it costs, before it starts: tokens/s = MFU × the
card's peak / FLOPs per token (engine/hardware/flops.py), the MFU measured on this user's own
finished runs on that card when there are any, else an assumed default (said which).

`estimate --gpu NAME --price-per-hour P` and the wizard's Hardware step ("plan for") show it.
Pure arithmetic over the run folders' events (no torch).
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.fsutil import fmt_duration
from sage_ft_tui.engine.hardware.estimate import compute_dtype
from sage_ft_tui.engine.hardware.flops import flops_for_config, mfu_basis
from sage_ft_tui.engine.hardware.gpus import find_gpu, target_snapshot
from sage_ft_tui.engine.runs.events import read_events
from sage_ft_tui.engine.runs.layout import RunLayout
from sage_ft_tui.engine.runs.plan import run_pace
from sage_ft_tui.engine.runs.state import list_runs, load_config

# Assumed MFU (by flops.py's LoRA-aware count) where no finished run on the card says better.
# NeMo reports ~40% for 8B LoRA on one H100 by its count; smaller models, short rows and
# Python overhead do worse, so 35% for 16-bit LoRA. QLoRA dequantizes every weight for every
# matmul (forward and backward), which costs time the FLOP count does not see: 4-bit ~2/3 of
# LoRA's pace, 8-bit (LLM.int8's outlier path) slower still; fp32 runs without tensor cores.
DEFAULT_MFU = {"none": 0.35, "4bit": 0.22, "8bit": 0.15}
CALIBRATION_RUNS = 5  # the newest finished runs on the card that the measured MFU is the median of
# MFU grows with the model (bigger matmuls, less overhead per FLOP): a run calibrates an estimate
# only when its FLOPs/token is within this factor of the estimate's (tiny-demo never speaks for a 7B).
SIMILAR_SIZE = 4.0


@dataclass
class MfuChoice:
    value: float
    basis: str  # "assumed MFU 35% (default for LoRA bf16)" | "MFU 41% measured from 3 runs on H100 80GB"
    runs: list[str] = field(default_factory=list)  # the runs it was measured on


@dataclass
class CostEstimate:
    gpu: str
    gpus: int
    dtype: str
    peak_tflops: float  # one card's
    flops_per_token: float
    mfu: MfuChoice
    tokens: Optional[int]  # what the run trains on (None: unknown)
    tokens_basis: str = ""
    price_per_hour: Optional[float] = None  # per GPU hour

    @property
    def tokens_per_s(self) -> float:
        return self.mfu.value * self.peak_tflops * 1e12 * self.gpus / self.flops_per_token

    @property
    def seconds(self) -> Optional[float]:
        return self.tokens / self.tokens_per_s if self.tokens else None

    @property
    def cost(self) -> Optional[float]:
        s = self.seconds
        return s / 3600 * self.price_per_hour * self.gpus if s is not None and self.price_per_hour is not None else None

    def to_dict(self) -> dict:
        return {**asdict(self), "tokens_per_s": self.tokens_per_s, "seconds": self.seconds, "cost": self.cost}

    def lines(self) -> list[tuple[str, str]]:
        """(label, value) rows, the same in the CLI and the wizard."""
        cards = f"{self.gpus}× {self.gpu}" if self.gpus > 1 else self.gpu
        rows = [
            ("throughput", f"~{self.tokens_per_s:,.0f} tokens/s on {cards}"),
            ("assumption", self.mfu.basis),
            ("FLOPs/token", f"{self.flops_per_token / 1e9:.2f} GFLOP (peak {self.peak_tflops:g} TFLOP/s {self.dtype})"),
        ]
        if self.seconds is not None:
            rows.append(
                ("wall time", f"~{fmt_duration(self.seconds)} for {self.tokens:,} tokens ({self.tokens_basis})")
            )
        else:
            rows.append(("wall time", f"~{fmt_duration(1e6 / self.tokens_per_s)} per million tokens"))
        if self.price_per_hour is not None:
            per = f"{self.gpus} × " if self.gpus > 1 else ""
            if self.cost is not None:
                rows.append(("cost", f"~{self.cost:,.2f} at {per}{self.price_per_hour:g}/GPU-hour"))
            else:
                per_m = 1e6 / self.tokens_per_s / 3600 * self.price_per_hour * self.gpus
                rows.append(("cost", f"~{per_m:,.4f} per million tokens at {per}{self.price_per_hour:g}/GPU-hour"))
        return rows


def method_label(quantization: str, dtype: str) -> str:
    """ "LoRA bf16", "QLoRA 4-bit" — the method whose default MFU is used."""
    if quantization == "4bit":
        return "QLoRA 4-bit"
    if quantization == "8bit":
        return "QLoRA 8-bit"
    return "LoRA " + {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}.get(dtype, dtype)


def measured_mfu(
    gpu: str, quantization: str = "none", home: Optional[Path] = None, flops_per_token: Optional[float] = None
) -> Optional[MfuChoice]:
    """The median MFU of the newest finished runs on the card `gpu` (the table's name) with the
    same quantization (and, given `flops_per_token`, a model of similar size), from their
    events: the pace between first and last log (plan.run_pace) against the FLOPs/token and
    peak their `start` event recorded (or, for a run from before that, its config's count and
    the card named by its `hw` events)."""
    found: list[tuple[float, str]] = []
    for r in list_runs(home):
        if r.state != "completed":
            continue
        try:
            evs = read_events(RunLayout(Path(r.path)).events).events
        except OSError:
            continue
        basis = _recorded_basis(Path(r.path), evs, quantization)
        if basis is None or basis["gpu"] != gpu:
            continue
        if flops_per_token and not (1 / SIMILAR_SIZE <= basis["flops_per_token"] / flops_per_token <= SIMILAR_SIZE):
            continue
        pace = run_pace(r, evs)
        if pace is None:
            continue
        util = basis["flops_per_token"] / pace.per_token_s / (basis["peak_tflops"] * 1e12 * basis["gpus"])
        if 0 < util <= 1:  # a clock jump or a mislabelled card is no calibration
            found.append((util, r.name))
        if len(found) == CALIBRATION_RUNS:
            break
    if not found:
        return None
    value = statistics.median(u for u, _ in found)
    n = len(found)
    return MfuChoice(
        value, f"MFU {value:.0%} measured from {n} run{'s' if n > 1 else ''} on {gpu}", [r for _, r in found]
    )


def _recorded_basis(run: Path, evs: list[dict], quantization: str) -> Optional[dict]:
    """{gpu, gpus, peak_tflops, flops_per_token} of a finished run with `quantization`, or None."""
    try:
        cfg = load_config(run)
    except Exception:  # an unreadable old config: not a calibration
        return None
    if cfg.model.quantization != quantization:
        return None
    start: dict = next((e for e in reversed(evs) if e.get("kind") == "start"), {})
    rec = start.get("mfu_basis")
    if isinstance(rec, dict) and all(isinstance(rec.get(k), (int, float)) for k in ("peak_tflops", "flops_per_token")):
        return {**rec, "gpu": str(rec.get("gpu")), "gpus": int(rec.get("gpus") or 1)}
    hw = next((e for e in evs if e.get("kind") == "hw" and e.get("gpus")), None)
    if hw is None:
        return None  # a CPU run

    try:
        spec = find_gpu(str(hw["gpus"][0].get("name", "")))
        basis = mfu_basis(cfg, target_snapshot(spec.name, count=max(len(hw["gpus"]), 1)))
    except (SageError, AttributeError, IndexError, TypeError):
        return None
    return basis.to_event() if basis is not None else None


def choose_mfu(
    gpu: str, quantization: str, dtype: str, home: Optional[Path] = None, flops_per_token: Optional[float] = None
) -> MfuChoice:
    measured = measured_mfu(gpu, quantization, home, flops_per_token)
    if measured is not None:
        return measured
    value = DEFAULT_MFU.get(quantization, DEFAULT_MFU["none"])
    return MfuChoice(value, f"assumed MFU {value:.0%} (default for {method_label(quantization, dtype)})")


def estimate_cost(
    rc: Any,
    gpu: str,
    *,
    gpus: Optional[int] = None,
    tokens: Optional[int] = None,
    tokens_basis: str = "",
    price_per_hour: Optional[float] = None,
    home: Optional[Path] = None,
) -> CostEstimate:
    """The time and cost estimate of a RunConfig on `gpus` × the card `gpu` (any name find_gpu
    knows). `tokens`: what the run trains on (from its TrainPlan), else the estimate is per million
    tokens."""
    if price_per_hour is not None and not price_per_hour >= 0:
        raise SageError(
            f"--price-per-hour must be 0 or more, got {price_per_hour:g}", hint="the price of one GPU-hour, e.g. 2.5"
        )
    if tokens is not None and tokens <= 0:
        raise SageError(f"--tokens must be a positive whole number, got {tokens}", hint="e.g. --tokens 20000000")
    spec = find_gpu(gpu)
    dtype = compute_dtype(rc.training.precision, rc.model.dtype, gpu=True, bf16_ok=spec.bf16)
    peak = spec.peak(dtype)
    if not peak:
        raise SageError(
            f"{spec.name} has no {dtype} tensor cores to plan for",
            hint="pick --precision fp16" if dtype == "bfloat16" else "pick another card",
            kind="config",
        )
    count = gpus or (len(rc.training.gpus) if rc.training.gpus else 1)
    flops = flops_for_config(rc).total
    return CostEstimate(
        gpu=spec.name,
        gpus=count,
        dtype=dtype,
        peak_tflops=peak,
        flops_per_token=flops,
        mfu=choose_mfu(spec.name, rc.model.quantization, dtype, home, flops),
        tokens=tokens,
        tokens_basis=tokens_basis,
        price_per_hour=price_per_hour,
    )


def plan_tokens(p: Any) -> tuple[Optional[int], str]:
    """The tokens a TrainPlan trains on: the data's own (no padding) when known, else its steps
    at full rows (an upper bound)."""
    if p.real_tokens:
        return int(p.real_tokens), "the data's tokens over the planned steps"
    if p.total_steps:
        return int(p.total_steps * p.tokens_per_step), f"{p.total_steps} steps at full rows, at most"
    return None, ""


__all__ = ["DEFAULT_MFU", "MfuChoice", "CostEstimate", "estimate_cost", "choose_mfu", "measured_mfu", "plan_tokens"]
