#!/usr/bin/env bash
# Create benchmarks/.venv-gepa (gitignored) with GEPA 0.1.4 from PyPI, the second anchor of benchmarks/quality_real.py.
# GEPA's core needs no dependency; its documented way to call a model is a LiteLLM model string ("openai/MODEL"
# with OPENAI_BASE_URL pointing at the server), so LiteLLM is installed in the range GEPA's own extras accept
# (>=1.83,<1.92; gepa[full] would also pull mlflow, wandb and datasets, which the benchmark does not use).
# Versions are pinned by gepa-constraints.txt (a `pip freeze` of a working install). No GEPA code is kept here.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${GEPA_VENV:-$HERE/.venv-gepa}"
PY="${PYTHON:-python3}"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import importlib.metadata as m; assert m.version('gepa') == '0.1.4'" 2>/dev/null; then
  echo "GEPA 0.1.4 already installed in $VENV"; exit 0
fi
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip >/dev/null 2>&1 || true
if [ -f "$HERE/gepa-constraints.txt" ]; then
  "$VENV/bin/pip" install -q -c "$HERE/gepa-constraints.txt" "gepa==0.1.4" "litellm>=1.83.0,<1.92" openai
else
  "$VENV/bin/pip" install -q "gepa==0.1.4" "litellm>=1.83.0,<1.92" openai
fi
"$VENV/bin/python" -c "import importlib.metadata as m; print('gepa', m.version('gepa'), 'litellm', m.version('litellm'), 'openai', m.version('openai'))"
