"""Trials and the pick as MLflow runs: one experiment per sweep, one run per trial.

A trial's run holds its full params, final metrics (loss, cost, the trainer's metrics), its
learning curve as step metrics, and its status and failure reason as tags; the pick's run holds
the picked config, the predicted loss and its interval, and the export files as artifacts. Runs
carry `carbs.trial_id` (or `carbs.fit_id`), which is how a resumed sweep knows what is logged.
Imports MLflow, so only `experiments.tracking` imports this module, and only when tracking is on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from carbs.scaling.pick import LargeRunPick
from experiments.spec import SweepSpec
from experiments.store.models import Trial, TrialStatus

TRIAL_ID, FIT_ID, KIND = "carbs.trial_id", "carbs.fit_id", "carbs.kind"
_RUN_STATUS = {TrialStatus.SUCCEEDED: "FINISHED"}  # failed and error trials: FAILED
_MAX_TAG = 5_000  # MLflow's limit on a tag value
_CURVE_KEYS = ("train_loss", "val_loss", "tokens", "flops")


def _ms(dt: Any) -> int | None:
    return int(dt.timestamp() * 1000) if dt is not None else None


def _finite(items: Iterable[tuple[str, Any]]) -> dict[str, float]:
    """The numeric, finite values (MLflow metrics are floats; NaN says nothing a plot can use)."""
    out = {}
    for k, v in items:
        if isinstance(v, bool) or not isinstance(v, int | float):
            continue
        if math.isfinite(v):
            out[k] = float(v)
    return out


class MlflowTracker:
    """Logs one sweep to the experiment `experiment` of the MLflow store at `uri`."""

    def __init__(self, uri: str, experiment: str, spec: SweepSpec) -> None:
        self.client = MlflowClient(tracking_uri=uri)
        self.spec = spec
        found = self.client.get_experiment_by_name(experiment)
        self.experiment_id = (
            found.experiment_id
            if found is not None
            else self.client.create_experiment(experiment, tags={"carbs.sweep": spec.name})
        )

    def _runs(self, kind: str) -> list[Any]:
        runs, token = [], None
        while True:
            page = self.client.search_runs(
                [self.experiment_id],
                filter_string=f"tags.`{KIND}` = '{kind}'",
                max_results=1000,
                page_token=token,
            )
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def logged_trials(self) -> set[int]:
        """Trials with a complete run; a run left unfinished (the driver died mid-log) is
        deleted here, to be logged again whole."""
        done = set()
        for run in self._runs("trial"):
            if run.info.status == "RUNNING":
                self.client.delete_run(run.info.run_id)
            else:
                done.add(int(run.data.tags[TRIAL_ID]))
        return done

    def log_trial(self, trial: Trial) -> None:
        tags = {
            KIND: "trial",
            TRIAL_ID: str(trial.id),
            "carbs.sweep": self.spec.name,
            "carbs.trial_number": str(trial.number),
            "carbs.status": trial.status,
        }
        for key in ("failure_kind", "failure_reason", "worker", "error"):
            value = getattr(trial, key)
            if value:
                tags[f"carbs.{key}"] = str(value)[:_MAX_TAG]
        run = self.client.create_run(
            self.experiment_id,
            start_time=_ms(trial.started_at or trial.created_at),
            tags=tags,
            run_name=f"trial-{trial.number}",
        )
        params = self.spec.space().full(trial.params)
        final = _finite(
            [("loss", trial.loss), ("cost_flops", trial.cost_flops)]
            + [("cost_seconds", trial.cost_seconds), ("attempts", trial.attempts)]
            + sorted((trial.metrics or {}).items())
        )
        curve = [
            Metric(key, float(value), _ms(trial.finished_at) or 0, point.step)
            for point in trial.curve or []
            for key, value in _finite(
                [(k, getattr(point, k)) for k in _CURVE_KEYS] + sorted((point.extra or {}).items())
            ).items()
        ]
        self._log(run.info.run_id, params, final, curve, _ms(trial.finished_at) or 0)
        self.client.set_terminated(
            run.info.run_id, _RUN_STATUS.get(trial.status, "FAILED"), _ms(trial.finished_at)
        )

    def log_pick(self, pick: LargeRunPick, fit_id: int, exports: Sequence[Path]) -> bool:
        """The pick of fit `fit_id` as a run with the export files; False: already logged."""
        for run in self._runs("pick"):
            if run.data.tags.get(FIT_ID) == str(fit_id) and run.info.status == "FINISHED":
                return False
        lo, hi = pick.predicted_loss_ci
        run = self.client.create_run(
            self.experiment_id,
            tags={KIND: "pick", FIT_ID: str(fit_id), "carbs.sweep": self.spec.name}
            | {f"carbs.warning.{i}": w[:_MAX_TAG] for i, w in enumerate(pick.warnings)},
            run_name=f"large-run-pick-fit-{fit_id}",
        )
        metrics = {
            "predicted_loss": pick.predicted_loss,
            "predicted_loss_ci90_lo": lo,
            "predicted_loss_ci90_hi": hi,
            "target_flops": pick.target_flops,
        }
        now = int(time.time() * 1000)
        self._log(run.info.run_id, pick.params, _finite(metrics.items()), [], now)
        for path in exports:
            self.client.log_artifact(run.info.run_id, str(path), _artifact_dir(path))
        self.client.set_terminated(run.info.run_id, "FINISHED")
        return True

    def _log(
        self,
        run_id: str,
        params: dict[str, Any],
        final: dict[str, float],
        curve: list[Metric],
        timestamp: int,
    ) -> None:
        """log_batch within MLflow's per-call limits (100 params, 1000 metrics)."""
        plist = [Param(k, str(v)[:6000]) for k, v in sorted(params.items())]
        for i in range(0, len(plist), 100):
            self.client.log_batch(run_id, params=plist[i : i + 100])
        metrics = [Metric(k, v, timestamp, 0) for k, v in final.items()] + curve
        for i in range(0, len(metrics), 1000):
            self.client.log_batch(run_id, metrics=metrics[i : i + 1000])


def _artifact_dir(path: Path) -> str | None:
    """hf_dbrx/config.json keeps its folder, so the artifact is a from_pretrained folder."""
    return "exports/" + path.parent.name if path.parent.name == "hf_dbrx" else "exports"
