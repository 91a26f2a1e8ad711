"""Run one optimizer on one problem and record (cost, true loss) per trial, in order.

All drivers ask for `batch` suggestions at a time (a sweep with `batch` idle workers) and report
every trial, failures included, with its cost. Optuna samplers see the loss only (they are not
cost-aware); an infeasible suggestion is told as a failure at zero cost.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna

from benchmarks.optimizer.problems import Problem
from carbs.optimizer import Observation
from carbs.registry import build_optimizer
from carbs.space import SearchSpace


@dataclass
class Trace:
    costs: list[float] = field(default_factory=list)
    true_losses: list[float] = field(default_factory=list)
    suggest_seconds: float = 0.0


def run_native(
    problem: Problem,
    name: str,
    seed: int,
    trials: int,
    batch: int,
    settings: dict[str, Any] | None = None,
) -> Trace:
    opt = build_optimizer(problem.space, seed=seed, name=name, settings=settings or {})
    rng = np.random.default_rng([seed, 99])
    trace = Trace()
    while len(trace.costs) < trials:
        t = time.perf_counter()
        sugg = opt.suggest(min(batch, trials - len(trace.costs)))
        trace.suggest_seconds += time.perf_counter() - t
        for s in sugg:
            loss, cost = problem.evaluate(problem.space.full(s.params), rng)
            opt.observe(
                Observation(
                    s.params, cost, loss, failed=loss is None, suggestion_id=s.suggestion_id
                )
            )
            trace.costs.append(cost)
            trace.true_losses.append(
                math.inf if loss is None else problem.true_loss(problem.space.full(s.params))
            )
    return trace


def _optuna_params(trial: optuna.Trial, space: SearchSpace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in space.params:
        if p.kind == "categorical":
            out[p.name] = trial.suggest_categorical(p.name, list(p.choices))
        elif p.multiple_of:
            m = p.multiple_of
            lo, hi = math.ceil(p.min / m), math.floor(p.max / m)
            out[p.name] = m * trial.suggest_int(p.name, lo, hi, log=p.kind == "log")
        elif p.is_integer:
            out[p.name] = trial.suggest_int(p.name, int(p.min), int(p.max), log=p.kind == "log")
        else:
            out[p.name] = trial.suggest_float(p.name, p.min, p.max, log=p.kind in ("log", "logit"))
    return space.canonical(out)


def run_optuna(problem: Problem, sampler_name: str, seed: int, trials: int, batch: int) -> Trace:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = (
        optuna.samplers.TPESampler(seed=seed)
        if sampler_name == "tpe"
        else optuna.samplers.GPSampler(seed=seed)
    )
    study = optuna.create_study(sampler=sampler)
    rng = np.random.default_rng([seed, 99])
    trace = Trace()
    while len(trace.costs) < trials:
        t = time.perf_counter()
        asked = [study.ask() for _ in range(min(batch, trials - len(trace.costs)))]
        params = [_optuna_params(tr, problem.space) for tr in asked]
        trace.suggest_seconds += time.perf_counter() - t
        for tr, p in zip(asked, params, strict=True):
            if not problem.space.is_feasible(p):
                study.tell(tr, state=optuna.trial.TrialState.FAIL)
                trace.costs.append(0.0)
                trace.true_losses.append(math.inf)
                continue
            loss, cost = problem.evaluate(problem.space.full(p), rng)
            if loss is None:
                study.tell(tr, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(tr, loss)
            trace.costs.append(cost)
            trace.true_losses.append(
                math.inf if loss is None else problem.true_loss(problem.space.full(p))
            )
    return trace


def cost_to_frontier(trace: Trace, problem: Problem, tol: float = 0.01) -> float:
    """Total cost spent until, at every reference budget C, some trial costing <= C has a true
    loss within `tol` of the frontier at C (inf if never)."""
    targets = {c: (1 + tol) * problem.frontier(c) for c in problem.budgets}
    reached: set[float] = set()
    spent = 0.0
    for cost, loss in zip(trace.costs, trace.true_losses, strict=True):
        spent += cost
        for c, bar in targets.items():
            if cost <= c and loss <= bar:
                reached.add(c)
        if len(reached) == len(targets):
            return spent
    return math.inf
