"""The SQL store on SQLite and PostgreSQL: migrations, trials, idempotent results, curves, fits."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import inspect

from experiments.store.models import TrialStatus
from experiments.store.repository import Store, SweepConflict
from experiments.store.trial_result import TrialResult

SPEC = {"search_space": {"x": {"kind": "log"}}, "constraints": [], "workload": {"kind": "callable"}}


def test_migrations_create_every_table(store_url: str) -> None:
    store = Store(store_url)
    tables = set(inspect(store.session().get_bind()).get_table_names())
    assert {"sweeps", "trials", "metric_points", "fits", "exports", "alembic_version"} <= tables
    Store(store_url)  # opening again re-runs migrations as a no-op


def test_trials_are_numbered_and_results_written_once(store_url: str) -> None:
    store = Store(store_url)
    sweep, created = store.get_or_create_sweep("s1", SPEC, "yaml")
    assert created
    t0, t1 = store.create_trials(sweep.id, [({"x": 1.0}, "sid-a"), ({"x": 2.0}, None)])
    assert (t0.number, t1.number) == (0, 1)
    store.mark_running(t0.id, worker="w1")
    assert store.finish_trial(
        t0.id, TrialResult(TrialStatus.SUCCEEDED, loss=3.5, cost_flops=1e12, cost_seconds=2.0)
    )
    # a late duplicate result for the same trial changes nothing
    assert not store.finish_trial(
        t0.id, TrialResult(TrialStatus.SUCCEEDED, loss=9.9, cost_flops=1e12)
    )
    stored = store.get_trial(t0.id)
    assert (
        stored is not None and stored.loss == 3.5 and stored.attempts == 1 and stored.worker == "w1"
    )
    assert store.status_counts(sweep.id) == {"succeeded": 1, "pending": 1}
    more = store.create_trials(sweep.id, [({"x": 3.0}, None)])
    assert more[0].number == 2


def test_existing_sweep_with_other_space_is_refused_and_kept(store_url: str) -> None:
    store = Store(store_url)
    sweep, _ = store.get_or_create_sweep("s2", SPEC, "yaml")
    store.create_trials(sweep.id, [({"x": 1.0}, None)])
    other = {**SPEC, "search_space": {"y": {"kind": "log"}}}
    with pytest.raises(SweepConflict, match="different `search_space`"):
        store.get_or_create_sweep("s2", other, "yaml2")
    again, created = store.get_or_create_sweep("s2", SPEC, "yaml")
    assert not created and again.id == sweep.id
    assert len(store.trials(sweep.id)) == 1


def test_curve_points_are_idempotent_and_ordered(store_url: str) -> None:
    store = Store(store_url)
    sweep, _ = store.get_or_create_sweep("s3", SPEC, "yaml")
    (t,) = store.create_trials(sweep.id, [({"x": 1.0}, None)])
    pts = [{"step": s, "tokens": 100.0 * s, "train_loss": 5.0 - s, "lr": 1e-3} for s in (3, 1, 2)]
    assert store.add_curve_points(t.id, pts) == 3
    assert store.add_curve_points(t.id, pts[:2]) == 0
    curve = store.get_trial(t.id).curve
    assert [m.step for m in curve] == [1, 2, 3]
    assert curve[0].extra == {"lr": 1e-3}


def test_expired_lease_requeues_and_fits_and_exports_round_trip(store_url: str) -> None:
    store = Store(store_url)
    sweep, _ = store.get_or_create_sweep("s4", SPEC, "yaml")
    (t,) = store.create_trials(sweep.id, [({"x": 1.0}, None)])
    store.mark_running(t.id, owner="dead-driver", lease_s=0.01)
    time.sleep(0.05)
    assert store.reclaim_expired(sweep.id, max_attempts=3) == (1, 0)
    assert store.get_trial(t.id).status == TrialStatus.PENDING
    fit = store.save_fit(sweep.id, "large_run_pick", 1, {"predicted_loss": 2.5})
    store.save_export(sweep.id, "yaml", "a: 1\n", 2.5, fit.id)
    assert store.latest_fit(sweep.id).result == {"predicted_loss": 2.5}
    assert [e.format for e in store.exports(sweep.id)] == ["yaml"]
