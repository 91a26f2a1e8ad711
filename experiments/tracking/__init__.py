"""Experiment tracking: a sweep's trials and its pick, handed to the tracker the lab uses.

Optional and never in the way: `open_tracker(spec, store)` returns None when tracking is off
(no `tracking.mlflow_uri` in the spec, no $MLFLOW_TRACKING_URI) or MLflow is not installed, and
the tracker logs from a background thread, so a slow or failing tracker neither delays nor
fails a trial. The store stays the record; runs are keyed by the trial id, so a resumed sweep
re-logs only what the tracker is missing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from carbs.scaling.pick import LargeRunPick
from experiments.redact import redact_text
from experiments.spec import SweepSpec
from experiments.store.repository import Store
from experiments.tracking.background import BackgroundTracker

log = logging.getLogger(__name__)


def tracking_uri(spec: SweepSpec) -> str | None:
    """The MLflow tracking URI this sweep logs to, or None (tracking off)."""
    t = spec.tracking
    if not t.enabled:
        return None
    return t.mlflow_uri or os.environ.get("MLFLOW_TRACKING_URI") or None


def experiment_name(spec: SweepSpec) -> str:
    return spec.tracking.mlflow_experiment or f"carbs/{spec.name}"


def open_tracker(spec: SweepSpec, store: Store) -> BackgroundTracker | None:
    """A started background tracker for the sweep, or None (off, or MLflow unavailable)."""
    uri = tracking_uri(spec)
    if uri is None:
        return None
    try:
        from experiments.tracking.mlflow_tracker import MlflowTracker
    except ImportError:
        log.warning(
            "tracking to %s is configured but MLflow is not installed "
            "(pip install 'carbs-moe[mlflow]'); the sweep runs untracked",
            redact_text(uri),
        )
        return None
    return BackgroundTracker(
        lambda: MlflowTracker(uri, experiment_name(spec), spec), store, spec.name
    ).start()


def log_pick(spec: SweepSpec, pick: LargeRunPick, fit_id: int, exports: Sequence[Path]) -> bool:
    """The pick of fit `fit_id` and its export files as a run (once per fit); False when
    tracking is off, it was logged already, or the tracker failed (logged, never raised)."""
    uri = tracking_uri(spec)
    if uri is None:
        return False
    try:
        from experiments.tracking.mlflow_tracker import MlflowTracker

        return MlflowTracker(uri, experiment_name(spec), spec).log_pick(pick, fit_id, exports)
    except Exception as exc:  # noqa: BLE001 - the exports are written; tracking is extra
        log.warning("tracker: could not log the pick to %s: %s", redact_text(uri), exc)
        return False


__all__ = ["BackgroundTracker", "experiment_name", "log_pick", "open_tracker", "tracking_uri"]
