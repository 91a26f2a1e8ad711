#!/usr/bin/env bash
# Set up, then run the whole test suite (PostgreSQL tests run when CARBS_TEST_POSTGRES_URL is set;
# .ci/run sets it to the local server).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
exec python -m pytest -q -rs "$@"
