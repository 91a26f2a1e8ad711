#!/usr/bin/env bash
# Create .venv and install carbs with everything it needs. Idempotent: a second run is quick.
# torch comes first, from scripts/install_torch.sh: a CPU build, or a loud stop before pip
# downloads a CUDA one (CARBS_TORCH=cuda takes that on a GPU machine). carbs is then installed
# with torch pinned to the build just installed, so no dependency can swap it.
# PYTHON picks the interpreter for a new .venv (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
stamp=.venv/.carbs-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ scripts/install_torch.sh -nt "$stamp" ]; then
  bash scripts/install_torch.sh
  pin=$(mktemp)
  python -W ignore -c 'import torch; print(f"torch=={torch.__version__}")' >"$pin"
  python -m pip install -q --disable-pip-version-check -c "$pin" -e ".[dev]" 2>&1 \
    | { grep -v "^WARNING: Location" || true; }
  rm -f "$pin"
  python -c "import torch, botorch, gpytorch, ray, sqlalchemy, matplotlib"
  if [ "${CARBS_TORCH:-cpu}" != cuda ]; then
    python -c 'import sys, torch; sys.exit(torch.version.cuda is not None)' \
      || { echo "error: torch in .venv is a CUDA build ($(python -c 'import torch; print(torch.version.cuda)'))" >&2; exit 1; }
  fi
  echo "carbs installed in .venv (torch $(python -c 'import torch; print(torch.__version__)'))"
  touch "$stamp"
fi
