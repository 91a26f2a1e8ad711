#!/usr/bin/env bash
# An isolated venv with LLM Foundry (from PyPI) for tests/experiments/test_export_llm_foundry.py,
# which validates our llm-foundry export with LLM Foundry's own config code. Isolated because
# llm-foundry pins torch 2.7 and transformers 4.51, which the project's venv must not get.
# Idempotent and cached: rebuilt only when scripts/llmfoundry/*.txt change.
#   CARBS_LLMF_VENV  where the venv goes (default .venv-llmf in the repo root)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${CARBS_LLMF_VENV:-.venv-llmf}
PY=${PYTHON:-python3}
stamp="$VENV/.llmf-$(cat scripts/llmfoundry/*.txt | sha1sum | cut -c1-12)"
[ -f "$stamp" ] && exit 0
rm -rf "$VENV"
"$PY" -m venv "$VENV"
# pip reports the pins it overrides as "dependency conflicts" (exit 0); a real failure stops here
pip() { "$VENV/bin/python" -m pip -q --disable-pip-version-check "$@" >"$VENV/pip.log" 2>&1 \
  || { tail -30 "$VENV/pip.log"; exit 1; }; }
pip install "torch==2.13.0"
pip install --no-deps -r scripts/llmfoundry/nodeps.txt
pip install -c scripts/llmfoundry/constraints.txt -r scripts/llmfoundry/requirements.txt
"$VENV/bin/python" -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
"$VENV/bin/python" scripts/llmfoundry_check.py --import-only
touch "$stamp"
