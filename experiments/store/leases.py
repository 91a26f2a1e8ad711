"""Trial leases in SQL: claim pending trials atomically, renew, and reclaim expired ones.

A RUNNING trial is owned by the driver named in `lease_owner` until `lease_expires_at`. The
driver renews the leases of its in-flight trials; when a driver dies (SIGKILL, lost node) its
leases run out and any driver of the sweep puts those trials back to PENDING.

Why claims are single conditional updates: two drivers on one sweep must never hand out the same
trial. On PostgreSQL the candidates are locked with SELECT ... FOR UPDATE SKIP LOCKED, so
concurrent claimers take disjoint rows without waiting on each other. On SQLite one
`UPDATE ... WHERE id IN (SELECT ...) RETURNING id` statement takes the database's single write
lock before it reads, so the select-and-mark is atomic there too. Both add the status test to
the UPDATE itself, so a row changed under the claimer is never taken twice.

Times are the drivers' UTC clocks; leases are tens of seconds, so a few seconds of clock skew
between hosts only shifts when a dead driver's trials are reclaimed.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from experiments.store.models import Sweep, Trial, TrialStatus, utcnow
from experiments.store.sweep_status import SweepStatus
from experiments.store.transient import retrying

LEASE_EXPIRED = "lease_expired"


def lock_sweep(s: Session, sweep_id: int) -> Sweep | None:
    """Serialise writers of one sweep for the rest of the transaction, then read the sweep.

    PostgreSQL: a row lock (SELECT ... FOR UPDATE). SQLite: pysqlite runs SELECTs outside any
    transaction until the first write, so a read-then-insert is not atomic there; a no-op UPDATE
    first takes the database's write lock, and every read after it sees the latest commit.
    """
    if s.get_bind().dialect.name == "sqlite":
        s.execute(update(Sweep).where(Sweep.id == sweep_id).values(status=Sweep.status))
        return s.get(Sweep, sweep_id)
    return s.scalar(select(Sweep).where(Sweep.id == sweep_id).with_for_update())


def lease_deadline(lease_s: float, now: datetime | None = None) -> datetime:
    return (now or utcnow()) + timedelta(seconds=lease_s)


def claim(s: Session, sweep_id: int, owner: str, limit: int, lease_s: float) -> list[int]:
    """Mark up to `limit` PENDING trials of the sweep RUNNING under `owner`; their ids, by number."""
    if limit <= 0:
        return []
    now = utcnow()
    values = {
        "status": TrialStatus.RUNNING,
        "lease_owner": owner,
        "lease_expires_at": lease_deadline(lease_s, now),
        "started_at": now,
        "attempts": Trial.attempts + 1,
    }
    candidates = (
        select(Trial.id)
        .where(Trial.sweep_id == sweep_id, Trial.status == TrialStatus.PENDING)
        .order_by(Trial.number)
        .limit(limit)
    )
    if s.get_bind().dialect.name == "postgresql":
        ids = list(s.scalars(candidates.with_for_update(skip_locked=True)))
        if not ids:
            return []
        where = [Trial.id.in_(ids), Trial.status == TrialStatus.PENDING]
    else:
        where = [Trial.id.in_(candidates.scalar_subquery()), Trial.status == TrialStatus.PENDING]
    got = s.scalars(update(Trial).where(*where).values(**values).returning(Trial.id))
    return sorted(got)


def renew(s: Session, owner: str, trial_ids: Collection[int], lease_s: float) -> set[int]:
    """Extend `owner`'s leases on these trials; returns the ids still held (the rest were lost:
    reclaimed after expiry, finished by a late result, or cancelled)."""
    if not trial_ids:
        return set()
    stmt = (
        update(Trial)
        .where(
            Trial.id.in_(list(trial_ids)),
            Trial.lease_owner == owner,
            Trial.status == TrialStatus.RUNNING,
        )
        .values(lease_expires_at=lease_deadline(lease_s))
        .returning(Trial.id)
    )
    return set(s.scalars(stmt))


def _expired(sweep_id: int, now: datetime, exclude_owner: str | None) -> list:  # type: ignore[type-arg]
    cond = [
        Trial.sweep_id == sweep_id,
        Trial.status == TrialStatus.RUNNING,
        or_(Trial.lease_expires_at.is_(None), Trial.lease_expires_at < now),
    ]
    if exclude_owner is not None:
        cond.append(or_(Trial.lease_owner.is_(None), Trial.lease_owner != exclude_owner))
    return cond


def reclaim(
    s: Session,
    sweep_id: int,
    max_attempts: int,
    exclude_owner: str | None = None,
    cancelled: bool = False,
) -> tuple[int, int]:
    """Expired leases: back to PENDING, or ERROR once `max_attempts` are used, or CANCELLED when
    the sweep is being cancelled. Returns (requeued, gave_up). `exclude_owner` skips the
    caller's own trials, whose leases it renews itself."""
    now = utcnow()
    cond = _expired(sweep_id, now, exclude_owner)
    cleared = {"lease_owner": None, "lease_expires_at": None}
    if cancelled:
        res = s.execute(
            update(Trial)
            .where(*cond)
            .values(
                status=TrialStatus.CANCELLED, error="sweep cancelled", finished_at=now, **cleared
            )
        )
        return 0, int(res.rowcount or 0)
    gave_up = s.execute(
        update(Trial)
        .where(*cond, Trial.attempts >= max_attempts)
        .values(
            status=TrialStatus.ERROR,
            error="lease expired: its driver stopped renewing it, and no retries are left",
            failure_kind="infra",
            failure_reason=LEASE_EXPIRED,
            finished_at=now,
            **cleared,
        )
    )
    requeued = s.execute(
        update(Trial)
        .where(*cond, Trial.attempts < max_attempts)
        .values(
            status=TrialStatus.PENDING,
            error="lease expired: its driver stopped renewing it; requeued",
            failure_kind="infra",
            failure_reason=LEASE_EXPIRED,
            **cleared,
        )
    )
    return int(requeued.rowcount or 0), int(gave_up.rowcount or 0)


def release(s: Session, sweep_id: int, owner: str, keep: Collection[int]) -> int:
    """Trials leased to `owner` that it is not running (a claim whose commit reply was lost in a
    database blip) go back to PENDING at once instead of waiting for their lease to expire."""
    cond = [
        Trial.sweep_id == sweep_id,
        Trial.status == TrialStatus.RUNNING,
        Trial.lease_owner == owner,
    ]
    if keep:
        cond.append(Trial.id.not_in(list(keep)))
    res = s.execute(
        update(Trial)
        .where(and_(*cond))
        .values(
            status=TrialStatus.PENDING,
            lease_owner=None,
            lease_expires_at=None,
            attempts=Trial.attempts - 1,  # the claim never ran
        )
    )
    return int(res.rowcount or 0)


def count_live(s: Session, sweep_id: int) -> int:
    """How many of the sweep's trials are RUNNING under an unexpired lease."""
    return int(
        s.scalar(
            select(func.count()).where(
                Trial.sweep_id == sweep_id,
                Trial.status == TrialStatus.RUNNING,
                Trial.lease_expires_at >= utcnow(),
            )
        )
        or 0
    )


class LeaseQueries:
    """The lease methods of `Store` (mixed in): each one transaction, retried through blips."""

    retry_s: float

    def session(self) -> Session:  # provided by Store
        raise NotImplementedError

    @retrying
    def claim_trials(self, sweep_id: int, owner: str, limit: int, lease_s: float) -> list[Trial]:
        """Atomically take up to `limit` PENDING trials for `owner` (RUNNING, leased for
        `lease_s` seconds, attempts + 1). Concurrent claimers never get the same trial."""
        with self.session() as s, s.begin():
            ids = claim(s, sweep_id, owner, limit, lease_s)
            if not ids:
                return []
            return list(s.scalars(select(Trial).where(Trial.id.in_(ids)).order_by(Trial.number)))

    @retrying
    def renew_leases(self, owner: str, trial_ids: Collection[int], lease_s: float) -> set[int]:
        """Extend `owner`'s leases; returns the ids it still holds."""
        with self.session() as s, s.begin():
            return renew(s, owner, trial_ids, lease_s)

    @retrying
    def reclaim_expired(
        self, sweep_id: int, max_attempts: int, exclude_owner: str | None = None
    ) -> tuple[int, int]:
        """Trials whose driver stopped renewing their lease: requeued, or ERROR when their
        attempts are used up, or CANCELLED if the sweep is being cancelled. (requeued, ended)."""
        with self.session() as s, s.begin():
            status = s.scalar(select(Sweep.status).where(Sweep.id == sweep_id))
            return reclaim(
                s,
                sweep_id,
                max_attempts,
                exclude_owner=exclude_owner,
                cancelled=status in SweepStatus.CANCELLING,
            )

    @retrying
    def release_orphans(self, sweep_id: int, owner: str, keep: Collection[int]) -> int:
        with self.session() as s, s.begin():
            return release(s, sweep_id, owner, keep)

    @retrying
    def expire_leases(self, owner: str) -> int:
        """End every lease `owner` holds now (its driver process is known dead), so the next
        driver of each sweep reclaims those trials at once instead of after the lease length."""
        with self.session() as s, s.begin():
            res = s.execute(
                update(Trial)
                .where(Trial.status == TrialStatus.RUNNING, Trial.lease_owner == owner)
                .values(lease_expires_at=utcnow() - timedelta(seconds=1))
            )
            return int(res.rowcount or 0)

    @retrying
    def live_leases(self, sweep_id: int) -> int:
        with self.session() as s:
            return count_live(s, sweep_id)

    @retrying
    def mark_running(
        self,
        trial_id: int,
        worker: str | None = None,
        owner: str | None = None,
        lease_s: float | None = None,
    ) -> None:
        """Mark one trial RUNNING (tests, single-process use); drivers use `claim_trials`."""
        values: dict[str, Any] = {
            "status": TrialStatus.RUNNING,
            "started_at": utcnow(),
            "worker": worker,
            "attempts": Trial.attempts + 1,
        }
        if owner is not None:
            values["lease_owner"] = owner
        if lease_s is not None:
            values["lease_expires_at"] = lease_deadline(lease_s)
        with self.session() as s, s.begin():
            s.execute(update(Trial).where(Trial.id == trial_id).values(**values))

    @retrying
    def requeue(self, trial_id: int, error: str, owner: str | None = None) -> bool:
        """An infrastructure failure with retries left: back to PENDING, error kept for the
        record. With `owner`, only while that driver still holds the trial's lease (a driver
        that lost the lease must not requeue a trial another driver now runs)."""
        cond = [Trial.id == trial_id, Trial.status.not_in(TrialStatus.FINISHED)]
        if owner is not None:
            cond += [Trial.lease_owner == owner, Trial.status == TrialStatus.RUNNING]
        with self.session() as s, s.begin():
            res = s.execute(
                update(Trial)
                .where(*cond)
                .values(
                    status=TrialStatus.PENDING,
                    error=error,
                    failure_kind="infra",
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )
            return bool(res.rowcount)
