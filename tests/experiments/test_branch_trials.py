"""Decay branches in the store: each a succeeded child trial written with its run's result, in
one transaction (a duplicate or resumed result adds none), free of the trial budget, charged only
its cool-down, and told to the optimizer only where its token count is in the searched range."""

from __future__ import annotations

import pytest

from carbs.bayes import CarbsOptimizer
from carbs.local_search import RandomSearchOptimizer
from experiments.dispatch.allocate import budget_left, spent, stopped_trials
from experiments.dispatch.prune import record_pruned
from experiments.dispatch.task import execute_trial
from experiments.pruning import PruneDecision
from experiments.rebuild import rebuild_optimizer, told_as_bound
from experiments.spec import parse_spec
from experiments.store.models import TrialStatus
from experiments.store.repository import Store
from experiments.store.trial_result import TrialResult

SPEC = """
name: {name}
storage: {url}
workload: {{kind: callable, function: "experiments.toy_objectives:chinchilla_toy"}}
search_space:
  n_params:      {{kind: log, min: 1.0e+6, max: 1.0e+8, scales_cost: true}}
  tokens:        {{kind: log, min: {tmin}, max: 1.0e+9, scales_cost: true}}
  learning_rate: {{kind: log, min: 1.0e-4, max: 3.0e-2}}
budget: {{max_trials: 2}}
target: {{flops: 1.0e+20}}
optimizer: {{name: random}}
"""

BRANCHES = [
    {"tokens": 2.5e7, "loss": 3.4, "cost": 1.5e15, "spent": 3.0e14},
    {"tokens": 5.0e7, "loss": 3.1, "cost": 3.0e15, "spent": 6.0e14},
]


def _setup(store_url: str, name: str, tmin: float = 1e7):
    spec = parse_spec(SPEC.format(name=name, url=store_url, tmin=tmin), "b.yaml")
    store = Store(store_url)
    sweep, _ = store.get_or_create_sweep(name, spec.model_dump(mode="json"), "yaml")
    (t,) = store.create_trials(sweep.id, [({"n_params": 1e7, "tokens": 1e8,
                                            "learning_rate": 2e-3}, "sid-1")])  # fmt: skip
    return spec, store, sweep, t


def test_branches_become_child_trials_once_with_their_run(store_url: str) -> None:
    spec, store, sweep, t = _setup(store_url, "br-1")
    kw = dict(loss=2.9, cost_flops=6e15, branches=BRANCHES)
    assert store.finish_trial(t.id, TrialResult(TrialStatus.SUCCEEDED, **kw))
    duplicate = TrialResult(TrialStatus.SUCCEEDED, **kw)
    assert not store.finish_trial(t.id, duplicate)  # a duplicate adds nothing
    trials = store.trials(sweep.id)
    kids = sorted((x for x in trials if x.parent_id == t.id), key=lambda x: x.params["tokens"])
    assert [(k.params["tokens"], k.loss, k.cost_flops) for k in kids] == [
        (25_000_000, 3.4, 1.5e15),
        (50_000_000, 3.1, 3.0e15),
    ]
    assert all(k.status == TrialStatus.SUCCEEDED for k in kids)
    assert kids[0].params["n_params"] == 1e7 and kids[0].metrics["branch_of"] == t.number
    assert len({x.number for x in trials}) == 3
    # the budget: branches are free trials, and cost only their cool-downs
    assert budget_left(spec, trials) == 1
    assert spent(trials) == pytest.approx(6e15 + 3e14 + 6e14)
    # a second trial can still be made under max_trials 2
    (t2,) = store.create_trials(sweep.id, [({"n_params": 2e7, "tokens": 1e8,
                                             "learning_rate": 2e-3}, None)], max_trials=2)  # fmt: skip
    assert t2.number == 3


@pytest.mark.parametrize(("tmin", "told"), [(1e7, 3), (4e7, 2)])
def test_the_optimizer_is_told_a_branch_only_inside_the_searched_range(
    store_url: str, tmin: float, told: int
) -> None:
    spec, store, sweep, t = _setup(store_url, f"br-{int(tmin)}", tmin)
    store.finish_trial(
        t.id, TrialResult(TrialStatus.SUCCEEDED, loss=2.9, cost_flops=6e15, branches=BRANCHES)
    )
    opt = rebuild_optimizer(spec, store.trials(sweep.id))
    assert len(opt.observations) == told  # 2.5e7 tokens is below a 4e7 minimum: not told
    # a branch is told as derived (not a trial of its own), the run itself is not
    assert [o.derived for o in opt.observations].count(False) == 1


def test_a_workloads_branches_pass_through_the_worker_cleanly() -> None:
    out = execute_trial(
        "tests.experiments.branch_workload:with_branches", {"x": 1.0}, 1, 0, "cpu", {}
    )
    assert out["status"] == "succeeded"
    assert out["branches"] == [{"tokens": 10.0, "loss": 2.0, "cost": 5.0, "spent": 1.0}]


def test_stopped_trials_are_told_as_tried_with_what_they_spent(store_url: str) -> None:
    """The allocator tells an optimizer that takes them the stopped configs and their spend;
    one that does not take them is told nothing."""
    spec, store, sweep, t = _setup(store_url, "br-stop")
    store.finish_trial(
        t.id, TrialResult(TrialStatus.PRUNED, cost_flops=2e15, failure_reason="pruned")
    )
    pruned = [x for x in store.trials(sweep.id) if x.status == TrialStatus.PRUNED]
    told = stopped_trials(CarbsOptimizer(spec.space(), seed=0), pruned)
    assert told["tried"] == [t.params] and told["tried_spent"] == pytest.approx(2e15)
    assert stopped_trials(RandomSearchOptimizer(spec.space(), seed=0), pruned) == {}
    assert stopped_trials(CarbsOptimizer(spec.space(), seed=0), []) == {}


def test_a_stopped_trial_is_told_as_a_bound_where_its_stop_recorded_one(store_url: str) -> None:
    """Rebuilt, a pruned trial with its optimistic final loss and planned cost is a bound
    observation (planned cost on the axis, what it ran as its spend); one stopped without them
    is only a config tried."""
    spec, store, sweep, t = _setup(store_url, "br-bound")
    (old,) = store.create_trials(sweep.id, [({"n_params": 2e7, "tokens": 1e8,
                                              "learning_rate": 2e-3}, "sid-2")])  # fmt: skip
    record_pruned(store, t, PruneDecision(True, 3.3, 3.0, "hopeless"), spent=2e15, planned=6e15)
    store.finish_trial(
        old.id, TrialResult(TrialStatus.PRUNED, cost_flops=1e15, failure_reason="pruned")
    )
    trials = store.trials(sweep.id)
    (o,) = rebuild_optimizer(spec, trials).observations
    assert o.bound and o.loss == 3.3 and o.cost == 6e15 and o.spent == 2e15
    assert o.params == t.params
    rest = [x for x in trials if x.status == TrialStatus.PRUNED and not told_as_bound(x)]
    assert [x.id for x in rest] == [old.id]
