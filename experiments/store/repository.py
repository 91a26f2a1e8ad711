"""Queries over the store: the only place the rest of the code touches SQL.

Why a class per store URL: the runner, the CLI and the service each open one `Store` and call
small, transactional methods; every method commits its own unit of work, so a crash between
two calls never leaves a half-written trial.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from experiments.redact import redact_data, redact_text
from experiments.store.engine import StoreUnavailable, describe_store_error, open_sessionmaker
from experiments.store.leases import LeaseQueries, lock_sweep
from experiments.store.lifecycle import SweepLifecycleQueries
from experiments.store.models import Export, Fit, MetricPoint, Sweep, Trial, TrialStatus, utcnow
from experiments.store.sweep_status import SweepStatus
from experiments.store.transient import (
    DEFAULT_RETRY_S,
    call_with_retry,
    is_transient,
    retrying,
)
from experiments.store.trial_result import TrialResult

__all__ = ["Store", "SweepConflict", "SweepStatus"]

OPEN_RETRY_S = 10.0  # opening: long enough for a server restart, short enough for a typo
CURVE_FIELDS = ("tokens", "flops", "train_loss", "val_loss")


class SweepConflict(ValueError):
    """A sweep of that name exists with a different search space or workload."""


class Store(LeaseQueries, SweepLifecycleQueries):
    """All reads and writes of sweeps, trials, curves, fits and exports."""

    def __init__(self, url: str, retry_s: float = DEFAULT_RETRY_S, *, create: bool = True) -> None:
        """`retry_s`: how long each call keeps retrying through a database blip. Opening
        retries for at most `OPEN_RETRY_S` (a mistyped URL fails in seconds, not a minute) and
        fails with StoreUnavailable, one line naming the store and the fix. `create=False`
        (read-only commands) refuses a SQLite file that does not exist instead of making one."""
        self.url = url
        self.safe_url = redact_text(url)  # for messages: never the password
        self.retry_s = retry_s
        try:
            self._sessions: sessionmaker[Session] = call_with_retry(
                lambda: _open_with_migration_retry(url, create),
                retry_s=min(retry_s, OPEN_RETRY_S),
                what="opening the store",
                level=logging.INFO,  # the outcome is one line either way
            )
        except StoreUnavailable:
            raise
        except (SQLAlchemyError, OSError) as exc:
            raise StoreUnavailable(describe_store_error(exc, url)) from exc

    def session(self) -> Session:
        return self._sessions()

    def dispose(self) -> None:
        self._sessions.kw["bind"].dispose()

    # --- sweeps -------------------------------------------------------------------------
    @retrying
    def get_or_create_sweep(
        self, name: str, spec: Mapping[str, Any], spec_yaml: str, owner: str | None = None
    ) -> tuple[Sweep, bool]:
        """Return (sweep, created). An existing sweep must have the same search space and
        workload, else resuming would mix incomparable trials. Two drivers creating the same
        sweep at once both end up with the one row. Credentials in the spec (a storage URL's
        password) are redacted before it is stored: every reader of the sweep sees it."""
        spec, spec_yaml = redact_data(dict(spec)), redact_text(spec_yaml)
        try:
            return self._get_or_create_sweep(name, spec, spec_yaml, owner)
        except IntegrityError:  # another process inserted the name first: use its row
            return self._get_or_create_sweep(name, spec, spec_yaml, owner)

    def _get_or_create_sweep(
        self, name: str, spec: Mapping[str, Any], spec_yaml: str, owner: str | None
    ) -> tuple[Sweep, bool]:
        with self.session() as s, s.begin():
            sweep = s.scalar(select(Sweep).where(Sweep.name == name))
            if sweep is not None:
                for key in ("search_space", "constraints", "workload"):
                    if sweep.spec.get(key) != spec.get(key):
                        raise SweepConflict(
                            f"sweep {name!r} already exists in {self.safe_url} with a different "
                            f"`{key}`; give the new sweep another `name` to start afresh, or "
                            f"restore the old `{key}` to resume it"
                        )
                sweep.spec = dict(spec)
                sweep.spec_yaml = spec_yaml
                return sweep, False
            sweep = Sweep(
                name=name,
                spec=dict(spec),
                spec_yaml=spec_yaml,
                owner=owner,
                status=SweepStatus.CREATED,
            )
            s.add(sweep)
            s.flush()
            return sweep, True

    @retrying
    def get_sweep(self, name: str) -> Sweep | None:
        with self.session() as s:
            return s.scalar(select(Sweep).where(Sweep.name == name))

    def require_sweep(self, name: str) -> Sweep:
        sweep = self.get_sweep(name)
        if sweep is None:
            known = ", ".join(sw.name for sw in self.list_sweeps()) or "none"
            raise LookupError(f"no sweep named {name!r} in {self.safe_url} (sweeps there: {known})")
        return sweep

    @retrying
    def list_sweeps(self) -> list[Sweep]:
        with self.session() as s:
            return list(s.scalars(select(Sweep).order_by(Sweep.id)))

    @retrying
    def sweep_status(self, sweep_id: int) -> str | None:
        with self.session() as s:
            return s.scalar(select(Sweep.status).where(Sweep.id == sweep_id))

    @retrying
    def set_sweep_status(
        self, sweep_id: int, status: str, corpus_fingerprint: str | None = None
    ) -> None:
        """Unconditional; drivers use `transition_sweep` so they never undo a cancel request."""
        with self.session() as s, s.begin():
            values: dict[str, Any] = {"status": status, "updated_at": utcnow()}
            if corpus_fingerprint is not None:
                values["corpus_fingerprint"] = corpus_fingerprint
            s.execute(update(Sweep).where(Sweep.id == sweep_id).values(**values))

    @retrying
    def set_corpus_fingerprint(self, sweep_id: int, fingerprint: str) -> None:
        with self.session() as s, s.begin():
            s.execute(
                update(Sweep).where(Sweep.id == sweep_id).values(corpus_fingerprint=fingerprint)
            )

    @retrying
    def status_counts(self, sweep_id: int) -> dict[str, int]:
        with self.session() as s:
            rows = s.execute(
                select(Trial.status, func.count())
                .where(Trial.sweep_id == sweep_id)
                .group_by(Trial.status)
            )
            return {status: n for status, n in rows}

    # --- trials -------------------------------------------------------------------------
    @retrying
    def create_trials(
        self,
        sweep_id: int,
        suggestions: Sequence[tuple[dict[str, Any], str | None]],
        max_trials: int | None = None,
    ) -> list[Trial]:
        """Insert new pending trials, numbered after the sweep's last one.

        `max_trials` caps the sweep's non-cancelled trials, checked under a lock on the sweep
        row, so two drivers filling the same sweep never overshoot its budget. Suggestions whose
        id is already stored are returned, not inserted again (a retried call is harmless).
        Nothing is created while the sweep is being cancelled."""
        with self.session() as s, s.begin():
            sweep = lock_sweep(s, sweep_id)
            if sweep is None or sweep.status in SweepStatus.CANCELLING:
                return []
            sids = [sid for _, sid in suggestions if sid]
            existing = {
                t.suggestion_id: t
                for t in (
                    s.scalars(select(Trial).where(Trial.suggestion_id.in_(sids))) if sids else []
                )
            }
            room = len(suggestions)
            if max_trials is not None:
                live = s.scalar(
                    select(func.count()).where(
                        Trial.sweep_id == sweep_id,
                        Trial.status != TrialStatus.CANCELLED,
                        Trial.parent_id.is_(None),  # decay branches come free with their run
                    )
                )
                room = max(max_trials - int(live or 0), 0)
            last = s.scalar(select(func.max(Trial.number)).where(Trial.sweep_id == sweep_id))
            nxt = -1 if last is None else last
            out = []
            for params, sid in suggestions:
                if sid and sid in existing:
                    out.append(existing[sid])
                    continue
                if room <= 0:
                    continue
                room -= 1
                nxt += 1
                t = Trial(
                    sweep_id=sweep_id,
                    number=nxt,
                    params=dict(params),
                    suggestion_id=sid or uuid.uuid4().hex,
                    status=TrialStatus.PENDING,
                    metrics={},
                )
                s.add(t)
                out.append(t)
            s.flush()
            return out

    @retrying
    def trials(
        self, sweep_id: int, statuses: Iterable[str] | None = None, with_curves: bool = False
    ) -> list[Trial]:
        with self.session() as s:
            q = select(Trial).where(Trial.sweep_id == sweep_id).order_by(Trial.number)
            if statuses is not None:
                q = q.where(Trial.status.in_(list(statuses)))
            if with_curves:
                q = q.options(selectinload(Trial.curve))
            return list(s.scalars(q))

    @retrying
    def get_trial(self, trial_id: int) -> Trial | None:
        with self.session() as s:
            return s.get(Trial, trial_id, options=[selectinload(Trial.curve)])

    @retrying
    def finish_trial(self, trial_id: int, result: TrialResult) -> bool:
        """Write a trial's outcome once. Returns False (and writes nothing) when the trial has
        already finished, so a late or duplicate result never becomes a second observation.
        `result.curve` points are stored in the same transaction, only with the winning result,
        and so are `result.branches` (decay branches: {tokens, loss, cost, spent}), each as a
        succeeded child trial: a retried or resumed trial neither loses nor duplicates one."""
        with self.session() as s, s.begin():
            values: dict[str, Any] = {
                "status": result.status,
                "loss": result.loss,
                "cost_flops": result.cost_flops,
                "cost_seconds": result.cost_seconds,
                "error": result.error,
                "failure_kind": result.failure_kind,
                "failure_reason": result.failure_reason,
                "finished_at": utcnow(),
                "lease_owner": None,
                "lease_expires_at": None,
            }
            if result.metrics is not None:
                values["metrics"] = dict(result.metrics)
            if result.worker is not None:
                values["worker"] = result.worker
            res = s.execute(
                update(Trial)
                .where(Trial.id == trial_id, Trial.status.not_in(TrialStatus.FINISHED))
                .values(**values)
            )
            if not res.rowcount:
                return False
            if result.curve:
                _insert_curve(s, trial_id, result.curve)
            if result.branches:
                _insert_branches(s, trial_id, result.branches)
            return True

    @retrying
    def cancel_unfinished(self, sweep_id: int, reason: str = "cancelled") -> int:
        with self.session() as s, s.begin():
            res = s.execute(
                update(Trial)
                .where(Trial.sweep_id == sweep_id, Trial.status.not_in(TrialStatus.FINISHED))
                .values(
                    status=TrialStatus.CANCELLED,
                    error=reason,
                    finished_at=utcnow(),
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )
            return int(res.rowcount or 0)

    # --- learning curves ----------------------------------------------------------------
    @retrying
    def add_curve_points(self, trial_id: int, points: Sequence[Mapping[str, Any]]) -> int:
        """Store learning-curve points; steps already stored are skipped (idempotent)."""
        if not points:
            return 0
        with self.session() as s, s.begin():
            return _insert_curve(s, trial_id, points)

    @retrying
    def clear_curve(self, trial_id: int) -> int:
        """Drop a trial's stored curve points: a new attempt of the trial trains from step 0,
        so what an earlier attempt streamed is not its curve."""
        with self.session() as s, s.begin():
            res = s.execute(delete(MetricPoint).where(MetricPoint.trial_id == trial_id))
            return int(res.rowcount or 0)

    # --- fits and exports ---------------------------------------------------------------
    @retrying
    def save_fit(self, sweep_id: int, kind: str, n_trials: int, result: Mapping[str, Any]) -> Fit:
        with self.session() as s, s.begin():
            fit = Fit(sweep_id=sweep_id, kind=kind, n_trials=n_trials, result=dict(result))
            s.add(fit)
            s.flush()
            return fit

    @retrying
    def latest_fit(self, sweep_id: int, kind: str = "large_run_pick") -> Fit | None:
        with self.session() as s:
            return s.scalar(
                select(Fit)
                .where(Fit.sweep_id == sweep_id, Fit.kind == kind)
                .order_by(Fit.id.desc())
                .limit(1)
            )

    @retrying
    def save_export(
        self,
        sweep_id: int,
        fmt: str,
        content: str,
        predicted_loss: float | None,
        fit_id: int | None,
    ) -> Export:
        with self.session() as s, s.begin():
            exp = Export(
                sweep_id=sweep_id,
                format=fmt,
                content=content,
                predicted_loss=predicted_loss,
                fit_id=fit_id,
            )
            s.add(exp)
            s.flush()
            return exp

    @retrying
    def exports(self, sweep_id: int) -> list[Export]:
        with self.session() as s:
            return list(
                s.scalars(select(Export).where(Export.sweep_id == sweep_id).order_by(Export.id))
            )


def _insert_branches(s: Session, parent_id: int, branches: Sequence[Mapping[str, float]]) -> None:
    """Child trials of `parent_id`, one per decay branch: its params with `tokens` set to the
    branch's, its standalone cost as `cost_flops` (where it sits on the frontier), and what it
    actually cost (its cool-down) as `metrics.spent_flops`."""
    parent = s.get(Trial, parent_id)
    if parent is None:
        return
    lock_sweep(s, parent.sweep_id)  # numbers are handed out under the sweep's lock
    number = s.scalar(select(func.max(Trial.number)).where(Trial.sweep_id == parent.sweep_id))
    now = utcnow()
    for b in sorted(branches, key=lambda b: b["tokens"]):
        number = (number or 0) + 1
        tokens = int(round(b["tokens"]))
        s.add(
            Trial(
                sweep_id=parent.sweep_id,
                number=number,
                suggestion_id=f"{parent.suggestion_id}:branch-{tokens}"[:64],
                parent_id=parent_id,
                params={**parent.params, "tokens": tokens},
                status=TrialStatus.SUCCEEDED,
                loss=float(b["loss"]),
                cost_flops=float(b["cost"]),
                attempts=0,
                worker=parent.worker,
                metrics={"branch_of": parent.number, "spent_flops": float(b["spent"])},
                created_at=now,
                started_at=now,
                finished_at=now,
            )
        )


def _insert_curve(s: Session, trial_id: int, points: Sequence[Mapping[str, Any]]) -> int:
    have = set(s.scalars(select(MetricPoint.step).where(MetricPoint.trial_id == trial_id)))
    added = 0
    for p in points:
        step = int(p["step"])
        if step in have:
            continue
        have.add(step)
        extra = {k: v for k, v in p.items() if k not in CURVE_FIELDS and k != "step"}
        s.add(
            MetricPoint(
                trial_id=trial_id,
                step=step,
                extra=extra,
                **{k: _num(p.get(k)) for k in CURVE_FIELDS},
            )
        )
        added += 1
    return added


def _open_with_migration_retry(url: str, create: bool) -> sessionmaker[Session]:
    """Two processes opening a fresh database at once may race on creating the tables; the
    loser's second try finds the schema at head and does nothing."""
    try:
        return open_sessionmaker(url, create=create)
    except DBAPIError as exc:
        if is_transient(exc):
            raise
        return open_sessionmaker(url, create=create)


def _num(v: Any) -> float | None:
    if v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None
