"""Read-only views of the store shaped for the API and the dashboard (plain JSON-ready dicts).

Why here and not in the repository: these are presentation queries (one grouped count for the
sweeps list, frontier points with their configs, curves); the repository stays the write path.
Nothing here writes.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import func, select

from carbs.pareto import pareto_mask
from experiments.redact import redact_data, redact_text
from experiments.store.models import MetricPoint, Sweep, Trial, TrialStatus
from experiments.store.repository import Store


def _iso(d: datetime | None) -> str | None:
    return d.isoformat() if d is not None else None


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def sweep_rows(store: Store) -> list[dict[str, Any]]:
    """Every sweep with its trial counts and best loss, in two queries."""
    with store.session() as s:
        sweeps = list(s.scalars(select(Sweep).order_by(Sweep.id)))
        counts: dict[int, dict[str, int]] = {}
        for sid, status, n in s.execute(
            select(Trial.sweep_id, Trial.status, func.count()).group_by(
                Trial.sweep_id, Trial.status
            )
        ):
            counts.setdefault(sid, {})[status] = n
        best = dict(
            s.execute(
                select(Trial.sweep_id, func.min(Trial.loss))
                .where(Trial.status == TrialStatus.SUCCEEDED)
                .group_by(Trial.sweep_id)
            ).all()
        )
    return [sweep_dict(sw, counts.get(sw.id, {}), best.get(sw.id)) for sw in sweeps]


def sweep_dict(
    sw: Sweep, counts: dict[str, int], best_loss: float | None, *, full: bool = False
) -> dict[str, Any]:
    spec = sw.spec or {}
    out: dict[str, Any] = {
        "name": sw.name,
        "owner": sw.owner,
        "status": sw.status,
        "description": spec.get("description", ""),
        "created_at": _iso(sw.created_at),
        "updated_at": _iso(sw.updated_at),
        "counts": dict(counts),
        "n_trials": sum(counts.values()),
        "max_trials": (spec.get("budget") or {}).get("max_trials"),
        "best_loss": _finite(best_loss),
        "target_flops": (spec.get("target") or {}).get("flops"),
    }
    if full:  # rows written before redaction existed may still hold a password: redact again
        out["spec"] = redact_data(spec)
        out["spec_yaml"] = redact_text(sw.spec_yaml or "")
        out["corpus_fingerprint"] = sw.corpus_fingerprint
    return out


def sweep_detail(store: Store, sw: Sweep) -> dict[str, Any]:
    counts = store.status_counts(sw.id)
    with store.session() as s:
        best = s.scalar(
            select(func.min(Trial.loss)).where(
                Trial.sweep_id == sw.id, Trial.status == TrialStatus.SUCCEEDED
            )
        )
    return sweep_dict(sw, counts, best, full=True)


def trial_dict(t: Trial, *, curve: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": t.id,
        "number": t.number,
        "status": t.status,
        "params": t.params,
        "loss": _finite(t.loss),
        "cost_flops": t.cost_flops,
        "cost_seconds": t.cost_seconds,
        "error": t.error,
        "failure_kind": t.failure_kind,
        "failure_reason": t.failure_reason,
        "attempts": t.attempts,
        "worker": t.worker,
        "metrics": t.metrics or {},
        "created_at": _iso(t.created_at),
        "started_at": _iso(t.started_at),
        "finished_at": _iso(t.finished_at),
    }
    if curve:
        out["curve"] = [curve_point(m) for m in t.curve]
    return out


def curve_point(m: MetricPoint) -> dict[str, Any]:
    return {
        "step": m.step,
        "tokens": m.tokens,
        "flops": m.flops,
        "train_loss": _finite(m.train_loss),
        "val_loss": _finite(m.val_loss),
    }


def frontier_data(store: Store, sw: Sweep) -> dict[str, Any]:
    """Successful trials (cost, loss, config, on-frontier flag) and failed trials' costs.

    `version` changes whenever a trial finishes, so a polling page redraws only on news."""
    trials = store.trials(sw.id)
    ok = [
        t
        for t in trials
        if t.status == TrialStatus.SUCCEEDED
        and _finite(t.loss) is not None
        and t.cost_flops is not None
        and t.cost_flops > 0
    ]
    mask = (
        pareto_mask(np.array([t.cost_flops for t in ok]), np.array([t.loss for t in ok]))
        if ok
        else np.zeros(0, dtype=bool)
    )
    points = [
        {
            "number": t.number,
            "cost": t.cost_flops,
            "loss": t.loss,
            "params": t.params,
            "frontier": bool(m),
        }
        for t, m in zip(ok, mask, strict=True)
    ]
    failed = [
        {
            "number": t.number,
            "cost": t.cost_flops,
            "params": t.params,
            "reason": t.failure_reason,
            "error": (t.error or "").splitlines()[0][:200] if t.error else None,
        }
        for t in trials
        if t.status == TrialStatus.FAILED
    ]
    finished = [t for t in trials if t.status in TrialStatus.FINISHED]
    space = (sw.spec or {}).get("search_space", {})
    return {
        "sweep": sw.name,
        "status": sw.status,
        "version": f"{len(finished)}:{len(trials)}:{sw.status}",
        "points": points,
        "failed": failed,
        "params": {name: {"kind": p.get("kind")} for name, p in space.items()},
        "target_flops": (sw.spec.get("target") or {}).get("flops"),
    }


def curves_data(store: Store, sw: Sweep, limit: int = 200) -> list[dict[str, Any]]:
    """Learning curves of the most recent `limit` trials that have any."""
    trials = [t for t in store.trials(sw.id, with_curves=True) if t.curve][-limit:]
    return [
        {
            "number": t.number,
            "status": t.status,
            "loss": _finite(t.loss),
            "points": [curve_point(m) for m in t.curve],
        }
        for t in trials
    ]


def plot_version(store: Store, sw: Sweep) -> str:
    """A key that changes whenever an observation is added (for caching rendered plots)."""
    with store.session() as s:
        n, last = s.execute(
            select(func.count(), func.max(Trial.finished_at)).where(
                Trial.sweep_id == sw.id, Trial.status.in_(TrialStatus.FINISHED)
            )
        ).one()
    stamp = last.strftime("%Y%m%d%H%M%S%f") if last is not None else "0"
    return f"{n}-{stamp}"


def observed_count(store: Store, sweep_id: int) -> int:
    with store.session() as s:
        return int(
            s.scalar(
                select(func.count()).where(
                    Trial.sweep_id == sweep_id, Trial.status.in_(TrialStatus.OBSERVED)
                )
            )
            or 0
        )
