#!/usr/bin/env bash
# Set up, then run the demo sweep: real MoE trainings on the bundled corpus, local Ray, CPU,
# SQLite (./carbs.db). Plots and exported configs land in runs/moe_tiny/. Run it again to resume.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
exec carbs run experiments/sweeps/moe_tiny.yaml "$@"
