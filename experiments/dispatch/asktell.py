"""Ask/tell access to a sweep for workers outside Ray (a lab's own job scripts, the service API),
with the same guarantees as the Ray driver: no trial handed out twice, results written once.

Without a driver, the worker is the lease owner: `ask` claims a trial under the worker's name,
the worker calls `heartbeat` while it trains (every lease/3 seconds, or use `keep_alive`), and
`tell` writes the result. A worker that dies stops renewing; the next `ask` by anyone requeues
its trial once the lease expires. This is where Optuna's heartbeat stops short: its ask/tell
interface has no lease, so a crashed worker's trial stays RUNNING forever.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from experiments.dispatch.allocate import allocate_trials
from experiments.dispatch.heartbeat import LeaseKeeper, default_lease_s, driver_id
from experiments.dispatch.outcome import TrialOutcome
from experiments.dispatch.recorder import OutcomeRecorder, load_price
from experiments.spec import stored_spec
from experiments.store.repository import Store, SweepStatus


@dataclass(frozen=True)
class AskedTrial:
    trial_id: int
    number: int
    params: dict[str, Any]  # searched and fixed values: what the workload gets
    seed: int


class AskTellClient:
    """One worker's handle on a stored sweep. `worker` names it in leases (default: host:pid)."""

    def __init__(
        self, store: Store, sweep_name: str, worker: str | None = None, lease_s: float | None = None
    ) -> None:
        self.store = store
        sweep = store.require_sweep(sweep_name)
        self.sweep_id = sweep.id
        self.spec = stored_spec(sweep.spec, sweep.name)
        self.worker = worker or driver_id()
        self.lease_s = float(lease_s or default_lease_s())
        self.recorder = OutcomeRecorder(self.spec, store, self.worker, load_price(self.spec))

    def ask(self) -> AskedTrial | None:
        """The next trial to run, leased to this worker; None when the sweep needs no more
        (budget spent, or cancelled). Stale leases of dead workers are requeued first."""
        if self.store.sweep_status(self.sweep_id) in SweepStatus.CANCELLING:
            return None
        self.store.reclaim_expired(
            self.sweep_id, self.spec.budget.max_retries + 1, exclude_owner=self.worker
        )
        got = allocate_trials(self.store, self.spec, self.sweep_id, self.worker, 1, self.lease_s)
        if not got.trials:
            return None
        t = got.trials[0]
        return AskedTrial(
            trial_id=t.id,
            number=t.number,
            params=self.spec.space().full(t.params),
            seed=self.spec.seed * 1_000_003 + t.number,
        )

    def heartbeat(self, trial_id: int) -> bool:
        """Renew the lease; False means the trial is no longer this worker's: stop running it."""
        return trial_id in self.store.renew_leases(self.worker, {trial_id}, self.lease_s)

    def keep_alive(self, trial_id: int) -> LeaseKeeper:
        """A started background heartbeat for one trial; `stop()` it after `tell`."""
        keeper = LeaseKeeper(self.store, self.worker, self.lease_s)
        keeper.add(trial_id)
        keeper.start()
        return keeper

    def tell(
        self,
        trial_id: int,
        loss: float,
        cost: float,
        seconds: float | None = None,
        metrics: Mapping[str, Any] | None = None,
        curve: Sequence[Mapping[str, Any]] = (),
    ) -> bool:
        """Report a finished trial. False when it already had a result (this one is ignored)."""
        return self._record(
            TrialOutcome(
                trial_id,
                "succeeded",
                loss=loss,
                cost=cost,
                seconds=seconds,
                worker=self.worker,
                metrics=dict(metrics or {}),
                curve=[dict(p) for p in curve],
            )
        )

    def tell_failure(
        self, trial_id: int, error: str, reason: str = "config", cost: float | None = None
    ) -> bool:
        """The config failed (diverged, out of memory ...): an observation the optimizer uses."""
        return self._record(
            TrialOutcome(
                trial_id, "failed", error=error, reason=reason, cost=cost, worker=self.worker
            )
        )

    def tell_infra_failure(self, trial_id: int, error: str, reason: str = "infra") -> None:
        """The run broke for reasons unrelated to the config: retried, never observed."""
        self.recorder.record(
            TrialOutcome(trial_id, "infra", error=error, reason=reason, worker=self.worker)
        )

    def _record(self, outcome: TrialOutcome) -> bool:
        before = self.recorder.written
        self.recorder.record(outcome)
        return self.recorder.written > before
