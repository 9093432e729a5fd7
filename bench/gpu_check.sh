#!/usr/bin/env bash
# GPU check, ONE command, ≤ 8 minutes on one H100/H200 (bench/gpu_check.py says what each
# phase measures): tokens/s, MFU (LoRA-aware FLOPs, engine/hardware/flops.py) and peak memory
# against `estimate` of bf16 LoRA on random models at the shapes users train (Qwen2.5-0.5B,
# Llama-3.2-1B, Gemma-2-2B, Llama-3.1-8B), 4-bit QLoRA at 1B and 8B, the 0.5B run again
# without our fused paths (memory and speed they save), OOM recovery, the Monitor screen
# driven headlessly against the live run (monitor.svg), and which attention/kernel path each
# run took. Results: gpu_check.json, gpu_check_summary.txt, monitor.svg
# and gpu_check.log in $OUT (else a temp folder).
#
# 1. Wheels (here, where pip reaches PyPI). The GPU image (device KINDS.md: Python 3.12,
#    torch 2.11+cu130, transformers, peft, accelerate, psutil, nvidia-ml-py, pyyaml, pandas,
#    pyarrow, triton) has no package index and lacks trl, datasets, textual and pydantic:
#
#      bash bench/gpu_check.sh --fetch-wheels              # required: 15 pinned wheels, ~6 MB
#      bash bench/gpu_check.sh --fetch-wheels --optional   # + liger-kernel (0.9 MB) and bitsandbytes
#                                                          #   cut to its CUDA 13.0 library (3.4 MB)
#
#    into the ignored folder .whl/ (Python 3.12, manylinux x86_64; `--python 3.11` or
#    `--cuda 128` for another image). All of it (~10 MB) fits `carry`'s 64 MiB beside the
#    ~5 MB tree; a whole bitsandbytes wheel (43 MB, a library per CUDA version) would too, barely.
#    The pins are the versions this repo's tests run with.
#    flash-attn has no wheel on PyPI (built per torch/CUDA pair): its path is reported as
#    not exercised unless the image has it.
#
# 2. On the GPU machine, from the repo root, as the device tool's one command:
#
#      run(command="bash bench/gpu_check.sh", carry=[".whl"], timeout_s=560)
#
#    It installs .whl/*.whl into /tmp/site (no index, no deps; the image's own torch,
#    transformers, peft and accelerate are kept), then runs the check under a hard 540 s
#    cap (the phases' own budgets end it in ~7.5 min).
#
# Here: `bash bench/gpu_check.sh --cpu-smoke` runs the same phases on CPU in about a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

REQUIRED=(
  trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 fsspec==2026.9.0
  textual==8.2.8 rich==15.0.0 mdit-py-plugins==0.7.0 linkify-it-py==2.2.0 uc-micro-py==2.0.0 platformdirs==4.14.9
  pydantic==2.13.4 pydantic-core==2.46.4 annotated-types==0.7.0 typing-inspection==0.4.2
)
OPTIONAL=(liger-kernel==0.8.5 bitsandbytes==0.50.2)

fetch_wheels() {
  local py=3.12 cuda=130 optional=0
  while [ $# -gt 0 ]; do
    case "$1" in
      --python) py=$2; shift 2 ;;
      --cuda) cuda=$2; shift 2 ;;
      --optional) optional=1; shift ;;
      *) echo "gpu_check.sh --fetch-wheels: unknown option $1" >&2; exit 2 ;;
    esac
  done
  local args=(--no-deps --only-binary=:all: --python-version "$py" --implementation cp -d .whl)
  for n in 28 27 24 17; do args+=(--platform "manylinux_2_${n}_x86_64"); done
  args+=(--platform manylinux2014_x86_64 --platform manylinux1_x86_64)
  mkdir -p .whl
  "$PY" -m pip download -q "${args[@]}" "${REQUIRED[@]}"
  if [ "$optional" = 1 ]; then
    "$PY" -m pip download -q "${args[@]}" "${OPTIONAL[@]}"
    # bitsandbytes ships a library for every CUDA (and ROCm, XPU) version: keep the CPU one
    # and the one for the GPU image's torch (torch.version.cuda without the dot).
    "$PY" - "$cuda" .whl/bitsandbytes-*.whl <<'EOF'
import sys, zipfile, os, re
cuda, path = sys.argv[1], sys.argv[2]
keep = re.compile(rf"bitsandbytes/libbitsandbytes_(cpu|cuda{cuda})\.so$")
drop = lambda n: re.match(r"bitsandbytes/libbitsandbytes_.*\.so$", n) and not keep.match(n)
tmp = path + ".tmp"
with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
    names = [n for n in src.namelist() if not drop(n)]
    if not any(keep.match(n) and "cuda" in n for n in names):
        sys.exit(f"bitsandbytes: no libbitsandbytes_cuda{cuda}.so in {path}")
    for n in names:
        data = src.read(n)
        if n.endswith(".dist-info/RECORD"):  # list only what is left
            data = b"".join(l for l in data.splitlines(True) if not drop(l.split(b",")[0].decode()))
        dst.writestr(src.getinfo(n), data)
os.replace(tmp, path)
print(f"bitsandbytes cut to CUDA {cuda}: {os.path.getsize(path) / 2**20:.1f} MiB")
EOF
  fi
  ls .whl/*.whl | wc -l | xargs echo "wheels in .whl/:"
  du -sh .whl
}

if [ "${1:-}" = "--fetch-wheels" ]; then
  shift
  fetch_wheels "$@"
  exit 0
fi

if ls .whl/*.whl >/dev/null 2>&1; then
  echo "installing the carried wheels from .whl/ into /tmp/site (no index, no deps)"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || {
    echo "gpu_check: the wheels in .whl/ do not install on $("$PY" -V) here: fetch them for this Python" \
      "(bash bench/gpu_check.sh --fetch-wheels --python X.Y)" >&2
    exit 3
  }
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi

# One line naming what is missing, before any GPU time goes into a phase.
"$PY" - <<'EOF'
import importlib.util, sys
need = ("torch", "transformers", "peft", "accelerate", "trl", "datasets", "textual", "pydantic", "yaml", "psutil",
        "pynvml", "pathspec", "rich")
missing = [m for m in need if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"gpu_check: missing {', '.join(missing)}: put their wheels in .whl/ (bash bench/gpu_check.sh --fetch-wheels)")
EOF

nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv,noheader 2>/dev/null || true
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT=${OUT:-$(mktemp -d -t sage-gpu-check-out-XXXX)}
export OUT
mkdir -p "$OUT"
set -o pipefail
timeout 540 "$PY" bench/gpu_check.py --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu_check.log"
