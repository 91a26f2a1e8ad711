"""Outcome recording under the failure taxonomy, with two drivers contending for one trial:
a late result is never a second observation, and a driver that lost a lease cannot requeue."""

from __future__ import annotations

import time
from pathlib import Path

from experiments.dispatch import TrialOutcome
from experiments.dispatch.recorder import OutcomeRecorder
from experiments.rebuild import rebuild_optimizer
from experiments.spec import parse_spec
from experiments.store.models import TrialStatus
from experiments.store.repository import Store

SPEC = """
name: rec
storage: {url}
workload: {{kind: callable, function: "experiments.toy_objectives:chinchilla_toy"}}
search_space:
  n_params: {{kind: log, min: 1.0e+6, max: 1.0e+8, scales_cost: true}}
optimizer: {{name: local}}
budget: {{max_trials: 5, max_retries: 1}}
target: {{flops: 1.0e+20}}
"""


def _setup(tmp_path: Path, store_url: str | None = None):  # type: ignore[no-untyped-def]
    url = store_url or f"sqlite:///{tmp_path / 'r.db'}"
    spec = parse_spec(SPEC.format(url=url), "rec.yaml")
    store = Store(url)
    sweep, _ = store.get_or_create_sweep("rec", spec.model_dump(mode="json"), "yaml")
    store.create_trials(sweep.id, [({"n_params": 1e7}, None)])
    return spec, store, sweep.id


def test_a_late_result_after_takeover_is_written_once(store_url: str, tmp_path: Path) -> None:
    spec, store, sid = _setup(tmp_path, store_url)
    (t,) = store.claim_trials(sid, "old", 1, lease_s=0.1)
    time.sleep(0.3)
    store.reclaim_expired(sid, max_attempts=5)
    store.claim_trials(sid, "new", 1, lease_s=30)
    old, new = (OutcomeRecorder(spec, store, d, None) for d in ("old", "new"))
    # the old driver's worker died: it no longer owns the trial, so nothing is requeued
    assert "another driver" in old.record(TrialOutcome(t.id, "infra", reason="worker_died"))
    assert store.get_trial(t.id).status == TrialStatus.RUNNING and old.retries == 0
    # the old attempt's result arrives late but first: it is the observation
    old.record(TrialOutcome(t.id, "succeeded", loss=3.0, cost=1e15, seconds=1.0))
    new.record(TrialOutcome(t.id, "succeeded", loss=3.5, cost=1e15, seconds=1.0))
    assert (old.written, new.written, new.duplicates_ignored) == (1, 0, 1)
    assert store.get_trial(t.id).loss == 3.0
    # the optimizer rebuilt from the rows sees the trial once, with the first loss
    observations = rebuild_optimizer(spec, store.trials(sid)).observations  # local search
    assert [(o.suggestion_id, o.loss) for o in observations] == [(t.suggestion_id, 3.0)]


def test_infra_failures_are_retried_then_end_as_errors_never_observed(tmp_path: Path) -> None:
    spec, store, sid = _setup(tmp_path)
    rec = OutcomeRecorder(spec, store, "d", None)
    (t,) = store.claim_trials(sid, "d", 1, lease_s=30)
    rec.record(TrialOutcome(t.id, "infra", error="WorkerCrashedError", reason="worker_died"))
    assert store.get_trial(t.id).status == TrialStatus.PENDING and rec.retries == 1
    store.claim_trials(sid, "d", 1, lease_s=30)  # attempt 2 of max_retries + 1 = 2
    rec.record(TrialOutcome(t.id, "infra", error="timed out", reason="timeout"))
    row = store.get_trial(t.id)
    assert (row.status, row.failure_kind, row.failure_reason) == (
        TrialStatus.ERROR,
        "infra",
        "timeout",
    )
    assert row.loss is None and rec.written == 0


def test_config_failures_are_observations(tmp_path: Path) -> None:
    spec, store, sid = _setup(tmp_path)
    rec = OutcomeRecorder(spec, store, "d", None)
    (t,) = store.claim_trials(sid, "d", 1, lease_s=30)
    rec.record(TrialOutcome(t.id, "failed", error="diverged", reason="diverged", cost=2e15))
    row = store.get_trial(t.id)
    assert (row.status, row.failure_kind, row.failure_reason) == (
        TrialStatus.FAILED,
        "config",
        "diverged",
    )
    assert rec.written == 1 and rec.retries == 0
