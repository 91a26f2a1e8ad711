"""Sweep status transitions that never undo a cancel, and the cancel itself: requested by
anyone (CLI, service), carried out by the drivers running the sweep, or at once when none is."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from experiments.store.leases import lock_sweep
from experiments.store.models import Sweep, Trial, TrialStatus, utcnow
from experiments.store.sweep_status import SweepStatus
from experiments.store.transient import retrying


class SweepLifecycleQueries:
    """The sweep-status methods of `Store` (mixed in): each one transaction, retried."""

    retry_s: float

    def session(self) -> Session:  # provided by Store
        raise NotImplementedError

    @retrying
    def transition_sweep(
        self, sweep_id: int, status: str, unless: Collection[str] = SweepStatus.CANCELLING
    ) -> bool:
        """Set the status unless it is currently one of `unless`; True when it was set."""
        with self.session() as s, s.begin():
            res = s.execute(
                update(Sweep)
                .where(Sweep.id == sweep_id, Sweep.status.not_in(list(unless)))
                .values(status=status, updated_at=utcnow())
            )
            return bool(res.rowcount)

    @retrying
    def request_cancel(self, sweep_name: str) -> bool:
        """Ask every driver of the sweep to stop: status "cancel_requested", and its PENDING
        trials cancelled so nobody starts them. The drivers cancel their in-flight trials and set
        "cancelled". False when there is no such sweep or it already finished or was cancelled."""
        with self.session() as s, s.begin():
            sweep_id = s.scalar(select(Sweep.id).where(Sweep.name == sweep_name))
            sweep = None if sweep_id is None else lock_sweep(s, sweep_id)
            if sweep is None or sweep.status in (SweepStatus.FINISHED, SweepStatus.CANCELLED):
                return False
            sweep.status = SweepStatus.CANCEL_REQUESTED
            sweep.updated_at = utcnow()
            s.execute(
                update(Trial)
                .where(Trial.sweep_id == sweep.id, Trial.status == TrialStatus.PENDING)
                .values(status=TrialStatus.CANCELLED, error="sweep cancelled", finished_at=utcnow())
            )
            return True

    @retrying
    def finish_cancel(self, sweep_id: int) -> int:
        """Carry out a cancel: every unfinished trial CANCELLED, sweep "cancelled". Returns how
        many trials were cancelled. A driver still running one finds its lease gone and stops."""
        with self.session() as s, s.begin():
            res = s.execute(
                update(Trial)
                .where(Trial.sweep_id == sweep_id, Trial.status.not_in(TrialStatus.FINISHED))
                .values(
                    status=TrialStatus.CANCELLED,
                    error="sweep cancelled",
                    finished_at=utcnow(),
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )
            s.execute(
                update(Sweep)
                .where(Sweep.id == sweep_id)
                .values(status=SweepStatus.CANCELLED, updated_at=utcnow())
            )
            return int(res.rowcount or 0)
