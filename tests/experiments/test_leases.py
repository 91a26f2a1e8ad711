"""Trial leases on SQLite and PostgreSQL: atomic claims, renewal, expiry, fencing, cancel."""

from __future__ import annotations

import time

from experiments.dispatch.heartbeat import LeaseKeeper
from experiments.store.models import TrialStatus
from experiments.store.repository import Store, SweepStatus
from experiments.store.trial_result import TrialResult

SPEC = {"search_space": {"x": {"kind": "log"}}, "constraints": [], "workload": {"kind": "callable"}}


def _sweep(store: Store, name: str, n: int) -> int:
    sweep, _ = store.get_or_create_sweep(name, SPEC, "yaml")
    store.create_trials(sweep.id, [({"x": float(i)}, None) for i in range(n)])
    return sweep.id


def test_claims_take_pending_trials_in_order_and_never_twice(store_url: str) -> None:
    store = Store(store_url)
    sid = _sweep(store, "claim", 5)
    a = store.claim_trials(sid, "driver-a", 2, lease_s=30)
    b = store.claim_trials(sid, "driver-b", 10, lease_s=30)
    assert [t.number for t in a] == [0, 1] and [t.number for t in b] == [2, 3, 4]
    assert store.claim_trials(sid, "driver-a", 3, lease_s=30) == []
    rows = store.trials(sid)
    assert all(t.status == TrialStatus.RUNNING and t.attempts == 1 for t in rows)
    assert [t.lease_owner for t in rows] == ["driver-a"] * 2 + ["driver-b"] * 3
    assert store.live_leases(sid) == 5


def test_live_leases_are_not_reclaimed_but_expired_ones_are(store_url: str) -> None:
    store = Store(store_url)
    sid = _sweep(store, "expiry", 3)
    store.claim_trials(sid, "alive", 1, lease_s=60)
    store.claim_trials(sid, "dead", 2, lease_s=0.2)
    time.sleep(0.4)
    assert store.reclaim_expired(sid, max_attempts=3) == (2, 0)
    by_number = {t.number: t for t in store.trials(sid)}
    assert by_number[0].status == TrialStatus.RUNNING and by_number[0].lease_owner == "alive"
    assert [by_number[i].status for i in (1, 2)] == [TrialStatus.PENDING] * 2
    assert by_number[1].failure_reason == "lease_expired" and by_number[1].lease_owner is None
    # the requeued trials are claimed again with a second attempt
    again = store.claim_trials(sid, "alive", 5, lease_s=60)
    assert [(t.number, t.attempts) for t in again] == [(1, 2), (2, 2)]


def test_expired_lease_with_no_attempts_left_ends_as_error(store_url: str) -> None:
    store = Store(store_url)
    sid = _sweep(store, "giveup", 1)
    store.claim_trials(sid, "dead", 1, lease_s=0.1)
    time.sleep(0.3)
    assert store.reclaim_expired(sid, max_attempts=1) == (0, 1)
    (t,) = store.trials(sid)
    assert t.status == TrialStatus.ERROR and t.failure_kind == "infra"


def test_reclaim_skips_the_callers_own_trials(store_url: str) -> None:
    store = Store(store_url)
    sid = _sweep(store, "own", 1)
    store.claim_trials(sid, "me", 1, lease_s=0.1)
    time.sleep(0.3)
    assert store.reclaim_expired(sid, max_attempts=3, exclude_owner="me") == (0, 0)
    # my heartbeat comes back after the blip: the lease is mine again
    (t,) = store.trials(sid)
    assert store.renew_leases("me", {t.id}, 30) == {t.id}


def test_renewal_reports_leases_taken_over_and_requeue_is_fenced(store_url: str) -> None:
    store = Store(store_url)
    sid = _sweep(store, "fence", 1)
    (t,) = store.claim_trials(sid, "old", 1, lease_s=0.1)
    time.sleep(0.3)
    store.reclaim_expired(sid, max_attempts=5)
    (t2,) = store.claim_trials(sid, "new", 1, lease_s=30)
    assert t2.id == t.id and t2.attempts == 2
    assert store.renew_leases("old", {t.id}, 30) == set()
    # the old driver's late infrastructure failure must not requeue the new driver's attempt
    assert not store.requeue(t.id, "worker died", owner="old")
    assert store.get_trial(t.id).lease_owner == "new"
    # a late result from either one is written once; the other is ignored
    assert store.finish_trial(t.id, TrialResult(TrialStatus.SUCCEEDED, loss=1.0, cost_flops=1.0))
    assert not store.finish_trial(
        t.id, TrialResult(TrialStatus.SUCCEEDED, loss=2.0, cost_flops=1.0)
    )
    assert store.get_trial(t.id).loss == 1.0
    assert store.renew_leases("new", {t.id}, 30) == set()


def test_result_curve_is_written_only_with_the_winning_result(store_url: str) -> None:
    store = Store(store_url)
    sid = _sweep(store, "curve", 1)
    (t,) = store.claim_trials(sid, "d", 1, lease_s=30)
    first = [{"step": 1, "train_loss": 3.0}, {"step": 2, "train_loss": 2.0}]
    assert store.finish_trial(
        t.id, TrialResult(TrialStatus.SUCCEEDED, loss=2.0, cost_flops=1.0, curve=first)
    )
    late = [{"step": 1, "train_loss": 9.0}, {"step": 3, "train_loss": 9.0}]
    assert not store.finish_trial(
        t.id, TrialResult(TrialStatus.SUCCEEDED, loss=9.0, cost_flops=1.0, curve=late)
    )
    assert [(p.step, p.train_loss) for p in store.get_trial(t.id).curve] == [(1, 3.0), (2, 2.0)]


def test_unstarted_claims_are_released_without_using_an_attempt(store_url: str) -> None:
    store = Store(store_url)
    sid = _sweep(store, "orphan", 3)
    claimed = store.claim_trials(sid, "me", 3, lease_s=30)
    assert store.release_orphans(sid, "me", keep=[claimed[0].id]) == 2
    rows = {t.number: t for t in store.trials(sid)}
    assert rows[0].status == TrialStatus.RUNNING
    assert [(rows[i].status, rows[i].attempts) for i in (1, 2)] == [(TrialStatus.PENDING, 0)] * 2


def test_create_trials_respects_the_budget_and_is_idempotent(store_url: str) -> None:
    store = Store(store_url)
    sweep, _ = store.get_or_create_sweep("budget", SPEC, "yaml")
    first = store.create_trials(sweep.id, [({"x": 1.0}, "a"), ({"x": 2.0}, "b")], max_trials=3)
    again = store.create_trials(
        sweep.id, [({"x": 1.0}, "a"), ({"x": 3.0}, "c"), ({"x": 4.0}, "d")], max_trials=3
    )
    assert [t.number for t in first] == [0, 1]
    assert [t.suggestion_id for t in again] == ["a", "c"]  # "a" already stored; "d" over budget
    assert len(store.trials(sweep.id)) == 3


def test_cancel_request_stops_new_work_and_finish_cancel_ends_the_rest(store_url: str) -> None:
    store = Store(store_url)
    sid = _sweep(store, "cancel", 3)
    store.claim_trials(sid, "d", 1, lease_s=30)
    assert store.request_cancel("cancel")
    assert not store.request_cancel("no-such-sweep")
    assert store.sweep_status(sid) == SweepStatus.CANCEL_REQUESTED
    assert store.status_counts(sid) == {"running": 1, "cancelled": 2}
    assert store.claim_trials(sid, "d", 5, lease_s=30) == []
    assert store.create_trials(sid, [({"x": 9.0}, None)]) == []
    # a driver that starts now must not flip the status back to running
    assert not store.transition_sweep(sid, SweepStatus.RUNNING)
    assert store.finish_cancel(sid) == 1
    assert store.sweep_status(sid) == SweepStatus.CANCELLED
    assert store.status_counts(sid) == {"cancelled": 3}
    assert not store.request_cancel("cancel")


def test_lease_keeper_renews_in_the_background_and_reports_lost_leases(store_url: str) -> None:
    store = Store(store_url)
    sid = _sweep(store, "keeper", 2)
    a, b = store.claim_trials(sid, "me", 2, lease_s=1.2)
    with LeaseKeeper(store, "me", lease_s=1.2) as keeper:
        keeper.add(a.id)
        keeper.add(b.id)
        time.sleep(2.0)  # well past the first lease: only renewals keep it alive
        assert store.reclaim_expired(sid, max_attempts=3, exclude_owner="other") == (0, 0)
        assert keeper.renewals >= 2
        store.finish_trial(b.id, TrialResult(TrialStatus.CANCELLED))  # e.g. the sweep was cancelled
        deadline = time.monotonic() + 3
        lost: set[int] = set()
        while not lost and time.monotonic() < deadline:
            lost = keeper.take_lost()
            time.sleep(0.05)
        assert lost == {b.id} and keeper.held == {a.id}


def test_sweeps_sharing_a_database_never_touch_each_others_trials(store_url: str) -> None:
    store = Store(store_url)
    a, b = _sweep(store, "team-a", 2), _sweep(store, "team-b", 2)
    store.claim_trials(b, "driver-b", 2, lease_s=0.1)
    time.sleep(0.3)
    assert store.reclaim_expired(a, max_attempts=3) == (0, 0)  # b's expired leases stay b's
    got = store.claim_trials(a, "driver-a", 10, lease_s=30)
    assert {t.sweep_id for t in got} == {a} and len(got) == 2
    assert store.request_cancel("team-a")
    assert store.status_counts(b) == {TrialStatus.RUNNING: 2}
    assert store.reclaim_expired(b, max_attempts=3) == (2, 0)
