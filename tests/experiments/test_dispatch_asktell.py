"""Ask/tell workers outside Ray, on SQLite and PostgreSQL: shared sweeps, dead workers' trials
requeued after their lease, late results ignored, infrastructure failures retried."""

from __future__ import annotations

import threading
import time

from experiments.dispatch.asktell import AskTellClient
from experiments.spec import parse_spec
from experiments.store.models import TrialStatus
from experiments.store.repository import Store
from experiments.toy_objectives import chinchilla_toy

SPEC = """
name: asktell
storage: {url}
workload: {{kind: callable, function: "experiments.toy_objectives:chinchilla_toy"}}
search_space:
  n_params:      {{kind: log, min: 1.0e+6, max: 1.0e+8, scales_cost: true}}
  tokens:        {{kind: log, min: 1.0e+7, max: 1.0e+9, scales_cost: true}}
  learning_rate: {{kind: log, min: 1.0e-4, max: 3.0e-3}}
optimizer: {{name: local}}
budget: {{max_trials: {n}, max_retries: 2}}
target: {{flops: 1.0e+20}}
"""


def _store(url: str, n: int) -> Store:
    text = SPEC.format(url=url, n=n)
    spec = parse_spec(text, "asktell.yaml")
    store = Store(url)
    store.get_or_create_sweep(spec.name, spec.model_dump(mode="json"), text)
    return store


def test_two_workers_share_a_sweep_and_each_trial_is_told_once(store_url: str) -> None:
    store = _store(store_url, n=8)
    told: list[int] = []
    lock = threading.Lock()

    def work(name: str) -> None:
        client = AskTellClient(store, "asktell", worker=name, lease_s=30)
        while (trial := client.ask()) is not None:
            result = chinchilla_toy(trial.params)
            assert client.tell(trial.trial_id, result["loss"], result["cost"])
            with lock:
                told.append(trial.trial_id)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    rows = store.trials(store.require_sweep("asktell").id)
    assert sorted(told) == sorted(t.id for t in rows) and len(rows) == 8
    assert all(t.status == TrialStatus.SUCCEEDED and t.attempts == 1 for t in rows)


def test_a_silent_worker_loses_its_trial_and_its_late_result_counts_once(
    store_url: str,
) -> None:
    store = _store(store_url, n=1)
    dead = AskTellClient(store, "asktell", worker="dead", lease_s=1.0)
    alive = AskTellClient(store, "asktell", worker="alive", lease_s=30)
    first = dead.ask()
    assert first is not None and alive.ask() is None  # the only trial is leased to "dead"
    time.sleep(1.3)  # "dead" never heartbeats
    second = alive.ask()
    assert second is not None and second.trial_id == first.trial_id
    assert not dead.heartbeat(first.trial_id)  # told to stop
    assert alive.heartbeat(second.trial_id)
    # the stalled worker finishes anyway and reports first: its result is the observation
    assert dead.tell(first.trial_id, loss=3.0, cost=1e15)
    assert not alive.tell(second.trial_id, loss=3.1, cost=1e15)
    (row,) = store.trials(alive.sweep_id)
    assert (row.status, row.loss, row.attempts) == (TrialStatus.SUCCEEDED, 3.0, 2)
    assert alive.ask() is None


def test_infra_failures_are_retried_and_config_failures_observed(store_url: str) -> None:
    store = _store(store_url, n=2)
    client = AskTellClient(store, "asktell", worker="w", lease_s=30)
    a = client.ask()
    assert a is not None
    client.tell_infra_failure(a.trial_id, "node preempted", reason="preempted")
    again = client.ask()
    assert again is not None and again.trial_id == a.trial_id  # requeued, same params
    assert client.tell_failure(again.trial_id, "diverged at step 10", reason="diverged")
    b = client.ask()
    assert b is not None and b.trial_id != a.trial_id
    with client.keep_alive(b.trial_id) as keeper:
        assert keeper.held == {b.trial_id}
        assert client.tell(b.trial_id, loss=4.0, cost=2e15)
    rows = {t.id: t for t in store.trials(client.sweep_id)}
    assert (rows[a.trial_id].status, rows[a.trial_id].failure_reason) == (
        TrialStatus.FAILED,
        "diverged",
    )
    assert rows[a.trial_id].attempts == 2 and rows[b.trial_id].status == TrialStatus.SUCCEEDED
    assert client.ask() is None
