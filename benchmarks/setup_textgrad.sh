#!/usr/bin/env bash
# Create benchmarks/.venv-textgrad (gitignored) with TextGrad 0.1.8 from PyPI, the anchor the benchmarks compare to.
# TextGrad 0.1.8 does not depend on torch (checked in its wheel metadata), so no torch is installed here; if a
# future pin ever pulls it, install torch==2.13.0 (CPU) first. Dependencies are pinned by textgrad-constraints.txt
# (a `pip freeze` of a working install) so the comparison is reproducible. No TextGrad code is kept in this repo.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${TEXTGRAD_VENV:-$HERE/.venv-textgrad}"
PY="${PYTHON:-python3}"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import importlib.metadata as m; assert m.version('textgrad') == '0.1.8'" 2>/dev/null; then
  echo "TextGrad 0.1.8 already installed in $VENV"; exit 0
fi
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip >/dev/null 2>&1 || true
"$VENV/bin/pip" install -q -c "$HERE/textgrad-constraints.txt" "textgrad==0.1.8"
if "$VENV/bin/python" -c "import importlib.util as u; raise SystemExit(0 if u.find_spec('torch') else 1)"; then
  echo "warning: torch ended up in $VENV (TextGrad 0.1.8 should not need it)" >&2
fi
"$VENV/bin/python" -c "import importlib.metadata as m; print('textgrad', m.version('textgrad'), 'openai', m.version('openai'))"
