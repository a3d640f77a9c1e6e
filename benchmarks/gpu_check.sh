#!/usr/bin/env bash
# One ready-to-run GPU check (< 5 min on one GPU): kernel correctness on CUDA (real Triton, no interpreter),
# then the benchmark at realistic sizes. Usage: bash benchmarks/gpu_check.sh  (PYTHON=... to pick the interpreter)
set -uo pipefail
cd "$(dirname "$0")/.."
unset TRITON_INTERPRET
pick() {
  for py in "${PYTHON:-}" .venv/bin/python python3 python; do
    [ -n "$py" ] && command -v "$py" >/dev/null 2>&1 || continue
    if "$py" -c "import torch, triton, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
      echo "$py"; return 0
    fi
  done
  return 1
}
PY=$(pick) || { echo "gpu_check: no python with CUDA torch + triton found (set PYTHON=...)"; exit 2; }
echo "== python: $PY"; "$PY" -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
"$PY" -c "import textopt.kernels" || { echo "gpu_check: textopt is not importable (install its deps: pip install -e . --no-deps plus pydantic tenacity diskcache networkx)"; exit 2; }
status=0
echo "== kernel correctness on CUDA"
timeout 200 "$PY" -m pytest tests/kernels -q -x -p no:cacheprovider -o addopts="" || status=1
echo "== benchmark (realistic sizes)"
timeout 240 "$PY" benchmarks/kernels.py --repeat 5 || status=1
exit $status
