"""The sweep loop: ask the optimizer, dispatch to Ray, store every outcome, stop on budget.

Why it is built around the store: every decision is taken from the rows (what is finished, what
is pending, what budget is spent), and the optimizer is rebuilt from them before each round of
suggestions, so a second `carbs run` of the same spec resumes exactly where the first stopped.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from experiments.dispatch import RayDispatcher, TrialOutcome
from experiments.progress import ProgressSink, SweepProgress
from experiments.rebuild import rebuild_optimizer
from experiments.spec import SweepSpec, import_callable
from experiments.store.models import Trial, TrialStatus
from experiments.store.repository import Store

log = logging.getLogger(__name__)


@dataclass
class SweepSummary:
    name: str
    sweep_id: int
    trials_finished: int
    succeeded: int
    failed: int
    errors: int
    best_loss: float | None
    total_cost: float
    resumed: bool
    interrupted: bool
    requeued: int


class SweepRunner:
    """Runs one sweep to its budget. `dispatcher` must be started before `run`."""

    def __init__(
        self,
        spec: SweepSpec,
        spec_yaml: str,
        store: Store,
        dispatcher: RayDispatcher,
        progress: ProgressSink,
        owner: str | None = None,
    ) -> None:
        self.spec = spec
        self.store = store
        self.dispatcher = dispatcher
        self.progress = progress
        self.sweep, created = store.get_or_create_sweep(
            spec.name, spec.model_dump(mode="json"), spec_yaml, owner=owner
        )
        self.resumed = not created
        self.price = _load_price(spec)
        self.state = SweepProgress(
            name=spec.name,
            max_trials=spec.budget.max_trials,
            max_total_cost=spec.budget.max_total_cost,
        )

    # --- budget -------------------------------------------------------------------------
    def _budget_left(self, trials: list[Trial]) -> int:
        """How many more trials may be created."""
        live = [t for t in trials if t.status != TrialStatus.CANCELLED]
        left = self.spec.budget.max_trials - len(live)
        if (
            self.spec.budget.max_total_cost is not None
            and _spent(trials) >= self.spec.budget.max_total_cost
        ):
            return 0
        return max(left, 0)

    # --- the loop -----------------------------------------------------------------------
    def run(self) -> SweepSummary:
        requeued = self.store.requeue_running(self.sweep.id)
        self.store.set_sweep_status(self.sweep.id, "running")
        interrupted = False
        self._refresh(
            event=f"{'resumed' if self.resumed else 'started'}; {requeued} trial(s) requeued"
            if self.resumed
            else "started"
        )
        try:
            while True:
                self._fill_workers()
                if not self.dispatcher.in_flight:
                    break
                for outcome in self.dispatcher.wait(timeout=0.5):
                    self._record(outcome)
        except KeyboardInterrupt:
            interrupted = True
            for trial_id in self.dispatcher.cancel_all():
                self.store.requeue(trial_id, "interrupted by the user; rerun `carbs run` to resume")
            self.store.set_sweep_status(self.sweep.id, "interrupted")
            self._refresh(event="interrupted: in-flight trials requeued; run again to resume")
        else:
            self.store.set_sweep_status(self.sweep.id, "finished")
            self._refresh(event="finished")
        finally:
            self.progress.close()
        return self._summary(interrupted, requeued)

    def _fill_workers(self) -> None:
        idle = self.spec.budget.parallel_trials - len(self.dispatcher.in_flight)
        if idle <= 0:
            return
        trials = self.store.trials(self.sweep.id)
        in_flight = set(self.dispatcher.in_flight)
        pending = [t for t in trials if t.status == TrialStatus.PENDING and t.id not in in_flight]
        n_new = min(idle - len(pending[:idle]), self._budget_left(trials))
        if n_new > 0:
            opt = rebuild_optimizer(self.spec, trials)
            busy = [
                t.params for t in trials if t.status in (TrialStatus.PENDING, TrialStatus.RUNNING)
            ]
            suggestions = opt.suggest(n_new, pending=busy)
            pending += self.store.create_trials(
                self.sweep.id, [(s.params, s.suggestion_id) for s in suggestions]
            )
        for trial in pending[:idle]:
            self._dispatch(trial)

    def _dispatch(self, trial: Trial) -> None:
        full = self.spec.space().full(trial.params)
        planned = self._planned_cost(full)
        limit = self.spec.budget.max_cost_per_trial
        if planned is not None and limit is not None and planned > limit:
            self.store.finish_trial(
                trial.id,
                TrialStatus.FAILED,
                cost_flops=planned,
                failure_kind="config",
                failure_reason="over_cost_limit",
                error=f"planned cost {planned:.3g} FLOPs exceeds budget.max_cost_per_trial {limit:.3g}",
            )
            self._refresh(event=f"trial {trial.number} skipped: over the per-trial cost limit")
            return
        self.store.mark_running(trial.id)
        seed = self.spec.seed * 1_000_003 + trial.number
        self.dispatcher.submit(trial.id, full, seed)
        self._refresh()

    def _planned_cost(self, full_params: dict[str, Any]) -> float | None:
        if self.price is None:
            return None
        try:
            return float(self.price(full_params))
        except Exception as exc:  # noqa: BLE001 - an unpriceable config still gets to run and fail visibly
            log.warning("could not price %s: %s", full_params, exc)
            return None

    def _record(self, o: TrialOutcome) -> None:
        trial = self.store.get_trial(o.trial_id)
        if trial is None:
            return
        number = trial.number
        if o.curve:
            self.store.add_curve_points(o.trial_id, o.curve)
        if o.status == "succeeded":
            self.store.finish_trial(
                o.trial_id,
                TrialStatus.SUCCEEDED,
                loss=o.loss,
                cost_flops=o.cost,
                cost_seconds=o.seconds,
                metrics=o.metrics,
                worker=o.worker,
            )
            fp = o.metrics.get("corpus_fingerprint")
            if fp:
                self._check_fingerprint(str(fp))
            event = f"trial {number} done: loss {o.loss:.4f}, cost {o.cost:.3g} FLOPs, {o.seconds or 0:.0f}s"
        elif o.status == "failed":
            planned = self._planned_cost(self.spec.space().full(trial.params))
            self.store.finish_trial(
                o.trial_id,
                TrialStatus.FAILED,
                cost_flops=o.cost or planned,
                cost_seconds=o.seconds,
                error=o.error,
                failure_kind="config",
                failure_reason=o.reason,
                worker=o.worker,
            )
            event = f"trial {number} failed ({o.reason}): {(o.error or '').splitlines()[0][:120]}"
        elif trial.attempts <= self.spec.budget.max_retries:
            self.store.requeue(o.trial_id, o.error or "infrastructure failure")
            event = f"trial {number} infrastructure failure ({o.reason}), requeued"
        else:
            self.store.finish_trial(
                o.trial_id,
                TrialStatus.ERROR,
                error=o.error,
                failure_kind="infra",
                failure_reason=o.reason,
                worker=o.worker,
            )
            event = f"trial {number} gave up after {trial.attempts} attempts ({o.reason})"
        self._refresh(event=event)

    def _check_fingerprint(self, fp: str) -> None:
        sweep = self.store.get_sweep(self.spec.name)
        if sweep is None:
            return
        if sweep.corpus_fingerprint is None:
            self.store.set_sweep_status(sweep.id, sweep.status, corpus_fingerprint=fp)
        elif sweep.corpus_fingerprint != fp:
            log.warning(
                "sweep %s: trial trained on corpus %s, sweep was on %s; losses are not comparable",
                sweep.name,
                fp,
                sweep.corpus_fingerprint,
            )

    # --- progress and summary -------------------------------------------------------------
    def _refresh(self, event: str | None = None) -> None:
        counts = self.store.status_counts(self.sweep.id)
        trials = self.store.trials(self.sweep.id, statuses=[TrialStatus.SUCCEEDED])
        s = self.state
        s.done = sum(
            counts.get(k, 0) for k in (TrialStatus.SUCCEEDED, TrialStatus.FAILED, TrialStatus.ERROR)
        )
        s.running = len(self.dispatcher.in_flight)
        s.failed = counts.get(TrialStatus.FAILED, 0)
        s.errors = counts.get(TrialStatus.ERROR, 0)
        losses = [t.loss for t in trials if t.loss is not None and math.isfinite(t.loss)]
        s.best_loss = min(losses) if losses else None
        s.cost_spent = _spent(self.store.trials(self.sweep.id))
        self.progress.update(s, event)

    def _summary(self, interrupted: bool, requeued: int) -> SweepSummary:
        counts = self.store.status_counts(self.sweep.id)
        return SweepSummary(
            name=self.spec.name,
            sweep_id=self.sweep.id,
            trials_finished=sum(
                counts.get(k, 0) for k in TrialStatus.OBSERVED + (TrialStatus.ERROR,)
            ),
            succeeded=counts.get(TrialStatus.SUCCEEDED, 0),
            failed=counts.get(TrialStatus.FAILED, 0),
            errors=counts.get(TrialStatus.ERROR, 0),
            best_loss=self.state.best_loss,
            total_cost=self.state.cost_spent,
            resumed=self.resumed,
            interrupted=interrupted,
            requeued=requeued,
        )


def _spent(trials: list[Trial]) -> float:
    """FLOPs actually spent: trials that ran to an outcome (skipped over-limit ones cost nothing)."""
    return float(
        sum(
            t.cost_flops or 0.0
            for t in trials
            if t.status in TrialStatus.FINISHED and t.failure_reason != "over_cost_limit"
        )
    )


def _load_price(spec: SweepSpec) -> Callable[[dict[str, Any]], float] | None:
    entry = spec.workload.cost_entrypoint
    if entry is None:
        return None
    try:
        return import_callable(entry)
    except ValueError as exc:
        log.warning("no price function (%s): per-trial cost limits are checked after the fact", exc)
        return None
