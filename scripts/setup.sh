#!/usr/bin/env bash
# Create .venv and install carbs with everything it needs. Idempotent: a second run is quick.
# torch is installed first, pinned to the local CPU build, so no dependency can pull a
# multi-GB CUDA build onto a CPU machine (pyproject bounds torch to <=2.14.1 as well).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
stamp=.venv/.carbs-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  python -m pip install -q --disable-pip-version-check "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
  python -m pip install -q --disable-pip-version-check -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
  python -c "import torch, botorch, gpytorch, ray, sqlalchemy, matplotlib" 
  touch "$stamp"
fi
