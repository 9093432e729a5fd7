#!/usr/bin/env bash
# GPU check (~8 min on one H100): LoRA bf16 + packing on a Qwen2.5-0.5B-shaped random model
# through the real worker; prints tokens/s, MFU, peak VRAM vs the estimate, NVML readings.
#
# The GPU machine has torch, transformers, peft and accelerate but no package index.
# Everything else travels as wheels in the ignored folder .whl/ at the repo root. Fill it
# on a machine with the index, for the GPU machine's Python and platform, e.g.:
#
#   pip download --dest .whl --only-binary=:all: --python-version 3.11 \
#       --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
#       trl datasets textual rich typer pydantic pyyaml psutil nvidia-ml-py pathspec openai \
#       bitsandbytes            # optional: adds the 4-bit QLoRA run
#   pip wheel --no-deps --wheel-dir .whl .     # this project
#
# Usage: bash bench/gpu_check.sh [--quick] [--steps N] [--batch N] [--length N]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  echo "installing the carried wheels from .whl/ (no index)"
  # Only what is missing: keep the machine's own torch/transformers/peft/accelerate.
  need=()
  for mod_pkg in trl:trl datasets:datasets textual:textual typer:typer yaml:pyyaml psutil:psutil \
                 pynvml:nvidia-ml-py pathspec:pathspec pydantic:pydantic rich:rich bitsandbytes:bitsandbytes; do
    mod=${mod_pkg%%:*}; pkg=${mod_pkg##*:}
    "$PY" -c "import $mod" 2>/dev/null || need+=("$pkg")
  done
  if [ ${#need[@]} -gt 0 ]; then
    for p in "${need[@]}"; do
      "$PY" -m pip install -q --no-index --find-links .whl "$p" || echo "  (no wheel for $p: skipped)"
    done
  fi
fi

"$PY" - <<'EOF'
import importlib, sys
missing = [m for m in ("torch", "transformers", "peft", "accelerate", "trl", "datasets", "psutil", "pynvml", "yaml", "pydantic")
           if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"gpu_check: missing {', '.join(missing)}: put their wheels in .whl/ (see the top of bench/gpu_check.sh)")
EOF

nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv,noheader || true
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec timeout 570 "$PY" bench/gpu_check.py "$@"
