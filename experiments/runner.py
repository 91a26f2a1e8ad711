"""The sweep loop: ask the optimizer, dispatch to Ray, store every outcome, stop on budget.

Why it is built around the store: every decision is taken from the rows (what is finished, what
is pending, what budget is spent), and the optimizer is rebuilt from them before each round of
suggestions, so a second `carbs run` of the same spec resumes exactly where the first stopped,
even after the first driver was killed with SIGKILL.

Several drivers may run one sweep (several researchers, a restarted driver while the old one's
trials still run): each takes trials with an atomic claim, holds a lease on each trial it runs
(renewed by `heartbeat.LeaseKeeper`), and reclaims only trials whose lease has expired. A result
is written once whoever delivers it; a driver that loses a lease stops that trial.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass

from experiments.dispatch import RayDispatcher, TrialOutcome
from experiments.dispatch.allocate import allocate_trials, budget_left, spent
from experiments.dispatch.curve_stream import DEFAULT_INTERVAL_S
from experiments.dispatch.heartbeat import LeaseKeeper, default_lease_s, driver_id
from experiments.dispatch.in_order import InOrderRelease
from experiments.dispatch.prune import record_pruned, review_running
from experiments.dispatch.recorder import OutcomeRecorder, load_price
from experiments.progress import ProgressSink, SweepProgress
from experiments.spec import SweepSpec
from experiments.store.models import Trial, TrialStatus
from experiments.store.repository import Store, SweepStatus
from experiments.store.trial_result import TrialResult
from experiments.tracking import BackgroundTracker, open_tracker

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
    requeued: int  # expired leases reclaimed by this driver (trials of dead drivers)
    cancelled: bool = False
    retries: int = 0  # infrastructure failures this driver requeued
    lost_leases: int = 0  # trials this driver stopped because another driver took them over
    duplicates_ignored: int = 0  # results that arrived for an already finished trial
    results_written: int = 0  # observations this driver wrote


def trial_seed(spec: SweepSpec, number: int) -> int:
    """The seed trial `number` trains with (a rerun with it reproduces the trial)."""
    return spec.seed * 1_000_003 + number


@dataclass(frozen=True)
class RunnerOptions:
    """How this driver takes part in the sweep. owner: recorded on the sweep when this driver
    creates it. lease_s: how long a claimed trial stays this driver's without a renewal (None:
    `default_lease_s()`). poll_s: how often the loop looks for finished trials and stops."""

    owner: str | None = None
    lease_s: float | None = None
    poll_s: float = 0.5


class _Stopped(Exception):
    """`request_stop` was called (from another thread)."""


class SweepRunner:
    """Runs one sweep to its budget. `dispatcher` must be started before `run`.

    Safe to run in a background thread (installs no signal handlers) and to stop from another
    thread with `request_stop()`; a cancel requested in the store (`Store.request_cancel`,
    `carbs cancel`) is noticed within one loop iteration.
    """

    def __init__(
        self,
        spec: SweepSpec,
        spec_yaml: str,
        store: Store,
        dispatcher: RayDispatcher,
        progress: ProgressSink,
        options: RunnerOptions = RunnerOptions(),
    ) -> None:
        self.spec = spec
        self.store = store
        self.dispatcher = dispatcher
        if hasattr(dispatcher, "stream_curves_to"):  # running trials' curves, live in the store
            every = spec.pruning.every_s if spec.pruning.enabled else DEFAULT_INTERVAL_S
            dispatcher.stream_curves_to(store.url, min(DEFAULT_INTERVAL_S, every))
        self.progress = progress
        self.sweep, created = store.get_or_create_sweep(
            spec.name, spec.model_dump(mode="json"), spec_yaml, owner=options.owner
        )
        self.resumed = not created
        self.price = load_price(spec)
        self.lease_s = float(options.lease_s or default_lease_s())
        self.poll_s = options.poll_s
        self.driver = driver_id()
        self.keeper = LeaseKeeper(store, self.driver, self.lease_s)
        self.recorder = OutcomeRecorder(spec, store, self.driver, self.price)
        self._stop = threading.Event()
        self._last_reclaim = 0.0
        self._last_prune = 0.0
        self._exhausted = False
        self.in_order = InOrderRelease() if spec.budget.reproducible else None
        self.reclaimed = 0
        self.lost_leases = 0
        self.state = SweepProgress(
            name=spec.name,
            max_trials=spec.budget.max_trials,
            max_total_cost=spec.budget.max_total_cost,
        )

    @property
    def max_attempts(self) -> int:
        return self.spec.budget.max_retries + 1

    def request_stop(self) -> None:
        """Stop from another thread: in-flight trials are requeued, as on Ctrl-C."""
        self._stop.set()

    # --- the loop -----------------------------------------------------------------------
    def run(self) -> SweepSummary:
        sid = self.sweep.id
        if self.store.sweep_status(sid) == SweepStatus.CANCEL_REQUESTED:
            self._cancel()
            self.progress.close()
            return self._summary(interrupted=False, cancelled=True)
        self._reclaim(force=True)
        # a finished cancel does not block a new explicit run: the sweep continues (its
        # cancelled trials do not count against the budget); a pending request is honoured
        self.store.transition_sweep(sid, SweepStatus.RUNNING, unless=[SweepStatus.CANCEL_REQUESTED])
        self._refresh(
            event=(
                f"resumed; {self.reclaimed} trial(s) of a stopped driver requeued"
                if self.resumed
                else "started"
            )
        )
        interrupted = cancelled = False
        self.recorder.tracker = self._open_tracker()
        self.keeper.start()
        try:
            cancelled = self._loop()
        except (KeyboardInterrupt, _Stopped, SystemExit) as exc:
            # SystemExit: Ray's SIGTERM handler in the driver (preemption); hand back the
            # in-flight trials now instead of letting their leases run out, then exit as asked
            interrupted = True
            self._record_held()
            # in flight, plus any claimed but not yet submitted when the signal landed (a
            # SIGTERM between the claim and the submit left them RUNNING under a 300 s lease)
            owned = set(self.dispatcher.cancel_all()) | {
                t.id
                for t in self.store.trials(sid)
                if t.status == TrialStatus.RUNNING and t.lease_owner == self.driver
            }
            for trial_id in owned:
                self.keeper.discard(trial_id)
                self.store.requeue(
                    trial_id,
                    "interrupted by the user; rerun `carbs run` to resume",
                    owner=self.driver,
                )
            self.store.transition_sweep(sid, SweepStatus.INTERRUPTED)
            self._refresh(event="interrupted: in-flight trials requeued; run again to resume")
            if isinstance(exc, SystemExit):
                raise
        except Exception:
            self._abandon()
            raise
        else:
            if not cancelled and not self.store.transition_sweep(sid, SweepStatus.FINISHED):
                # a cancel landed after the last check (it also stops new trials from being
                # made, which can be what completed the loop): carry it out instead
                self._cancel()
                cancelled = True
            self._refresh(event="cancelled: in-flight trials stopped" if cancelled else "finished")
        finally:
            self.keeper.stop()
            if self.recorder.tracker is not None:
                self.recorder.tracker.close()
            self.progress.close()
        return self._summary(interrupted, cancelled)

    def _open_tracker(self) -> BackgroundTracker | None:
        """The spec's experiment tracker (None: off); it first logs what it lacks (resume)."""
        try:
            return open_tracker(self.spec, self.store)
        except Exception as exc:  # noqa: BLE001 - a sweep runs untracked rather than not at all
            log.warning("tracker: not started: %s", exc)
            return None

    def _abandon(self) -> None:
        """The loop failed (e.g. the database stayed down past the retry window): stop this
        driver's Ray tasks so none runs on unowned, and hand their trials back if the store
        answers; if it does not, their leases expire and any driver requeues them."""
        ids = self.dispatcher.cancel_all()
        self.keeper.clear()
        for trial_id in ids:
            try:
                self.store.requeue(trial_id, "its driver failed; requeued", owner=self.driver)
            except Exception:  # noqa: BLE001 - best effort; lease expiry is the fallback
                log.warning("could not requeue trial id %s; its lease will expire", trial_id)
                return

    def _loop(self) -> bool:
        """Until the sweep is complete (True: it was cancelled instead)."""
        while True:
            if self._stop.is_set():
                raise _Stopped
            if self.store.sweep_status(self.sweep.id) in SweepStatus.CANCELLING:
                self._cancel()
                return True
            self._drop_lost_leases()
            self._reclaim()
            started = self._fill_workers()
            if not self.dispatcher.in_flight:
                if started == 0 and self._complete():
                    return False
                # other drivers' trials still run: wait for them, or for their leases to expire
                self._stop.wait(self.poll_s)
                continue
            self._take_results(self.dispatcher.wait(timeout=self.poll_s))
            self._prune()

    def _take_results(self, finished: list[TrialOutcome]) -> None:
        """Record what finished; with `budget.reproducible`, in submission order, each record
        followed by the suggestion it frees a slot for (`experiments.dispatch.in_order`)."""
        if self.in_order is None:
            for outcome in finished:
                self._record(outcome)
            return
        self.in_order.hold(finished)
        while (outcome := self.in_order.next_ready(self.dispatcher.in_flight)) is not None:
            self._record(outcome)
            self._fill_workers()

    def _prune(self) -> None:
        """Stop running trials whose curve cannot reach the frontier (spec.pruning), at most
        every `pruning.every_s` seconds."""
        cfg = self.spec.pruning
        now = time.monotonic()
        if not cfg.enabled or self.price is None or now - self._last_prune < cfg.every_s:
            return
        self._last_prune = now
        try:
            stops = review_running(
                self.store, self.spec, self.sweep.id, self.dispatcher.in_flight, self.price
            )
        except Exception:  # noqa: BLE001 - a failed review must never stop the sweep
            log.warning("sweep %s: early-stopping review failed", self.spec.name, exc_info=True)
            return
        for trial, decision in stops:
            pts = [m for m in trial.curve if m.flops]
            planned = self.recorder.planned_cost(self.spec.space().full(trial.params))
            spent = max((float(m.flops) for m in pts), default=0.0) or (planned or 0.0)
            if planned and spent >= planned * (1 - 1e-9):
                continue  # it has trained to its end: stopping saves nothing, its result comes
            if not self.dispatcher.stop_if_running(trial.id):
                continue  # it finished meanwhile: its result stands
            self.keeper.discard(trial.id)
            if record_pruned(self.store, trial, decision, spent, planned):
                self._refresh(event=f"trial {trial.number} stopped early: {decision.reason}")

    def _owned(self) -> list[int]:
        """Trials this driver holds: in flight, or finished and waiting for an earlier one
        (`budget.reproducible`), which still fill their slot and must not be released as
        orphans (seen: a waiting trial requeued, run twice, its second result ignored)."""
        held = self.in_order.held_ids if self.in_order is not None else []
        return [*self.dispatcher.in_flight, *held]

    def _record_held(self) -> None:
        """Results waiting for an earlier trial are results: the sweep stops, record them."""
        if self.in_order is not None:
            for outcome in self.in_order.drain():
                self._record(outcome)

    def _complete(self) -> bool:
        """No trial of the sweep is pending or running (by any driver) and no more may be made."""
        trials = self.store.trials(self.sweep.id)
        unfinished = [t for t in trials if t.status not in TrialStatus.FINISHED]
        return not unfinished and (budget_left(self.spec, trials) == 0 or self._exhausted)

    def _cancel(self) -> None:
        self._record_held()
        for trial_id in self.dispatcher.cancel_all():
            self.keeper.discard(trial_id)
        self.keeper.clear()
        n = self.store.finish_cancel(self.sweep.id)
        log.info("sweep %s cancelled (%d unfinished trials)", self.spec.name, n)

    def _reclaim(self, force: bool = False) -> None:
        """Requeue trials whose driver stopped renewing their lease (at most every lease/2)."""
        now = time.monotonic()
        if not force and now - self._last_reclaim < self.lease_s / 2:
            return
        self._last_reclaim = now
        requeued, ended = self.store.reclaim_expired(
            self.sweep.id, self.max_attempts, exclude_owner=self.driver
        )
        orphans = self.store.release_orphans(self.sweep.id, self.driver, keep=self._owned())
        self.reclaimed += requeued
        if requeued or ended or orphans:
            self._refresh(
                event=f"expired leases: {requeued} trial(s) requeued, {ended} gave up"
                + (f"; {orphans} unstarted claim(s) released" if orphans else "")
            )

    def _drop_lost_leases(self) -> None:
        for trial_id in self.keeper.take_lost():
            if self.dispatcher.cancel(trial_id):
                self.lost_leases += 1
                self._refresh(event=f"trial id {trial_id}: lease lost to another driver; stopped")

    # --- filling workers ------------------------------------------------------------------
    def _slots(self) -> int:
        """Trials this driver may run at once: the spec's cap, and what the cluster fits."""
        try:
            fits = self.dispatcher.capacity()
        except Exception:  # noqa: BLE001 - a cluster query failing must not stop the sweep
            fits = self.spec.budget.parallel_trials
        return min(self.spec.budget.parallel_trials, fits)

    def _fill_workers(self) -> int:
        """Claim pending trials (requeued ones first), create new ones within the budget, and
        submit them. Returns how many were claimed."""
        self._exhausted = False
        idle = self._slots() - len(self._owned())
        if idle <= 0:
            return 0
        got = allocate_trials(self.store, self.spec, self.sweep.id, self.driver, idle, self.lease_s)
        self._exhausted = got.exhausted
        for trial in got.trials:
            self._dispatch(trial)
        return len(got.trials)

    def _dispatch(self, trial: Trial) -> None:
        full = self.spec.space().full(trial.params)
        planned = self.recorder.planned_cost(full)
        limit = self.spec.budget.max_cost_per_trial
        if planned is not None and limit is not None and planned > limit:
            self.store.finish_trial(
                trial.id,
                TrialResult(
                    TrialStatus.FAILED,
                    cost_flops=planned,
                    failure_kind="config",
                    failure_reason="over_cost_limit",
                    error=f"planned cost {planned:.3g} FLOPs exceeds budget.max_cost_per_trial {limit:.3g}",
                ),
            )
            self._refresh(event=f"trial {trial.number} skipped: over the per-trial cost limit")
            return
        seed = trial_seed(self.spec, trial.number)
        self.keeper.add(trial.id)
        try:
            self.dispatcher.submit(trial.id, full, seed)
            if self.in_order is not None:
                self.in_order.submitted(trial.id)
        except Exception as exc:  # noqa: BLE001 - Ray refused the task: an infrastructure failure
            self.keeper.discard(trial.id)
            self.store.requeue(trial.id, f"could not submit: {exc}", owner=self.driver)
            raise
        self._refresh()

    # --- recording outcomes ---------------------------------------------------------------
    def _record(self, o: TrialOutcome) -> None:
        self.keeper.discard(o.trial_id)
        event = self.recorder.record(o)
        if event is not None:
            self._refresh(event=event)

    # --- progress and summary -------------------------------------------------------------
    def _refresh(self, event: str | None = None) -> None:
        trials = self.store.trials(self.sweep.id)
        counts: dict[str, int] = {}
        for t in trials:
            counts[t.status] = counts.get(t.status, 0) + 1
        s = self.state
        s.done = sum(
            counts.get(k, 0)
            for k in (
                TrialStatus.SUCCEEDED,
                TrialStatus.FAILED,
                TrialStatus.ERROR,
                TrialStatus.PRUNED,
            )
        )
        s.running = len(self._owned())
        s.failed = counts.get(TrialStatus.FAILED, 0)
        s.errors = counts.get(TrialStatus.ERROR, 0)
        losses = [
            t.loss
            for t in trials
            if t.status == TrialStatus.SUCCEEDED and t.loss is not None and math.isfinite(t.loss)
        ]
        s.best_loss = min(losses) if losses else None
        s.cost_spent = spent(trials)
        self.progress.update(s, event)

    def _summary(self, interrupted: bool, cancelled: bool) -> SweepSummary:
        counts = self.store.status_counts(self.sweep.id)
        return SweepSummary(
            name=self.spec.name,
            sweep_id=self.sweep.id,
            trials_finished=sum(
                counts.get(k, 0)
                for k in TrialStatus.OBSERVED + (TrialStatus.ERROR, TrialStatus.PRUNED)
            ),
            succeeded=counts.get(TrialStatus.SUCCEEDED, 0),
            failed=counts.get(TrialStatus.FAILED, 0),
            errors=counts.get(TrialStatus.ERROR, 0),
            best_loss=self.state.best_loss,
            total_cost=self.state.cost_spent,
            resumed=self.resumed,
            interrupted=interrupted,
            requeued=self.reclaimed,
            cancelled=cancelled,
            retries=self.recorder.retries,
            lost_leases=self.lost_leases,
            duplicates_ignored=self.recorder.duplicates_ignored,
            results_written=self.recorder.written,
        )
