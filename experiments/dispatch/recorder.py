"""Write a trial attempt's outcome under the failure taxonomy and the retry policy.

Succeeded and failed (config) results are observations, written once: a late or duplicate
result for a trial that already has one is ignored. Infrastructure failures are requeued while
the trial has attempts left (`budget.max_retries`), and only by the driver that still holds the
trial's lease, so a driver that lost a trial to another cannot disturb the new attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from experiments.dispatch.outcome import TrialOutcome
from experiments.entrypoints import LOCAL, EntryPointPolicy
from experiments.spec import SweepSpec
from experiments.store.models import Trial, TrialStatus
from experiments.store.repository import Store
from experiments.store.trial_result import TrialResult
from experiments.tracking.background import BackgroundTracker

log = logging.getLogger(__name__)

PriceFn = Callable[[dict[str, Any]], float]


class OutcomeRecorder:
    """Records outcomes for one driver (`driver` is its lease owner name)."""

    def __init__(
        self,
        spec: SweepSpec,
        store: Store,
        driver: str,
        price: PriceFn | None,
        tracker: BackgroundTracker | None = None,
    ) -> None:
        self.spec = spec
        self.tracker = tracker  # told of each trial once the store holds its result
        self.store = store
        self.driver = driver
        self.price = price
        self.retries = 0
        self.duplicates_ignored = 0
        self.written = 0  # results (succeeded or failed) this driver wrote first

    @property
    def max_attempts(self) -> int:
        return self.spec.budget.max_retries + 1

    def planned_cost(self, full_params: dict[str, Any]) -> float | None:
        if self.price is None:
            return None
        try:
            return float(self.price(full_params))
        except Exception as exc:  # noqa: BLE001 - an unpriceable config still gets to run and fail visibly
            log.warning("could not price %s: %s", full_params, exc)
            return None

    def record(self, o: TrialOutcome) -> str | None:
        """Store one outcome; returns the progress event to show (None: unknown trial)."""
        trial = self.store.get_trial(o.trial_id)
        if trial is None:
            return None
        number = trial.number
        if o.status in ("succeeded", "failed"):
            written = self._write_result(o, trial)
            self.written += int(written)
            if written:
                self._track(o.trial_id)
            if not written:
                self.duplicates_ignored += 1
                event = f"trial {number}: result ignored, the trial already has one"
            elif o.status == "succeeded":
                event = f"trial {number} done: loss {o.loss:.4f}, cost {o.cost:.3g} FLOPs, {o.seconds or 0:.0f}s"
            else:
                event = (
                    f"trial {number} failed ({o.reason}): {(o.error or '').splitlines()[0][:120]}"
                )
        elif trial.status != TrialStatus.RUNNING or trial.lease_owner != self.driver:
            event = f"trial {number}: infrastructure failure ignored, another driver owns it now"
        elif trial.attempts < self.max_attempts:
            if self.store.requeue(
                o.trial_id, o.error or "infrastructure failure", owner=self.driver
            ):
                self.retries += 1
            event = f"trial {number} infrastructure failure ({o.reason}), requeued"
        else:
            self.store.finish_trial(
                o.trial_id,
                TrialResult(
                    TrialStatus.ERROR,
                    error=o.error,
                    failure_kind="infra",
                    failure_reason=o.reason,
                    worker=o.worker,
                ),
            )
            self._track(o.trial_id)
            event = f"trial {number} gave up after {trial.attempts} attempts ({o.reason})"
        return event

    def _track(self, trial_id: int) -> None:
        """Queue the trial for the tracker; after the store write, and never raising."""
        if self.tracker is None:
            return
        try:
            self.tracker.trial_finished(trial_id)
        except Exception as exc:  # noqa: BLE001 - the trial is recorded; tracking is extra
            log.warning("tracker: trial id %s not queued: %s", trial_id, exc)

    def _write_result(self, o: TrialOutcome, trial: Trial) -> bool:
        """Write a succeeded or failed (config) result; False when the trial already had one."""
        if o.status == "succeeded":
            written = self.store.finish_trial(
                o.trial_id,
                TrialResult(
                    TrialStatus.SUCCEEDED,
                    loss=o.loss,
                    cost_flops=o.cost,
                    cost_seconds=o.seconds,
                    metrics=o.metrics,
                    worker=o.worker,
                    curve=o.curve,
                    branches=o.branches,
                ),
            )
            fp = o.metrics.get("corpus_fingerprint")
            if written and fp:
                self._check_fingerprint(str(fp))
            return written
        planned = self.planned_cost(self.spec.space().full(trial.params))
        return self.store.finish_trial(
            o.trial_id,
            TrialResult(
                TrialStatus.FAILED,
                cost_flops=o.cost or planned,
                cost_seconds=o.seconds,
                error=o.error,
                failure_kind="config",
                failure_reason=o.reason,
                worker=o.worker,
                curve=o.curve,
            ),
        )

    def _check_fingerprint(self, fp: str) -> None:
        sweep = self.store.get_sweep(self.spec.name)
        if sweep is None:
            return
        if sweep.corpus_fingerprint is None:
            self.store.set_corpus_fingerprint(sweep.id, fp)
        elif sweep.corpus_fingerprint != fp:
            log.warning(
                "sweep %s: trial trained on corpus %s, sweep was on %s; losses are not comparable",
                sweep.name,
                fp,
                sweep.corpus_fingerprint,
            )


def load_price(spec: SweepSpec, entrypoints: EntryPointPolicy = LOCAL) -> PriceFn | None:
    """The spec's price function (FLOPs of a config before it runs), or None; only an entry
    point `entrypoints` allows is imported."""
    entry = spec.workload.cost_entrypoint
    if entry is None:
        return None
    try:
        return entrypoints.resolve(entry)
    except ValueError as exc:
        log.warning("no price function (%s): per-trial cost limits are checked after the fact", exc)
        return None
