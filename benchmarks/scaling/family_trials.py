"""Trials of the world family, as the default optimizer produces them, cached between runs.

Protocol (what a researcher would do): search with trials of at most 1e18 FLOPs each and 3e19
in all, then pick the run of 1e20 (100x the largest trial). Two ways to get the trials:
`runner` (the default): the sweep runner, a local Ray and a SQLite store, exactly `carbs run`
on a generated spec whose workload is `carbs.testing.world_family:evaluate`; `asktell`: the same
optimizer driven in-process, one trial at a time (faster, for development). Trial sets are cached
as JSON under benchmarks/results/family_trials/ (gitignored): making them takes minutes, fitting
them seconds.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from carbs.testing.world_family import FamilyWorld

MAX_TRIAL_COST = 1e18
TOTAL_COST = 3e19
TARGET = 1e20
MAX_TRIALS = 400
CACHE = Path("benchmarks/results/family_trials")


@dataclass(frozen=True)
class Trial:
    params: dict[str, Any]
    cost: float
    loss: float | None


def scaling_roles(world: FamilyWorld) -> dict[str, str]:
    """The `scaling.roles` a researcher would declare for this world's names (an expert count
    may be called `expert_ratio` and a ratio `n_experts`: only the spec can say which)."""
    names = world.space().names
    experts = "experts" if world.form.experts_as == "count" else "experts_per_token"
    roles = {experts: world.form.name_of("experts")}
    for role in ("width", "depth", "top_k", "tokens", "lr", "batch", "wd"):
        roles[role] = world.form.name_of(role)
    return {r: n for r, n in roles.items() if n in names or r == "tokens"}


def spec_of(world: FamilyWorld, storage: str, seed: int) -> dict[str, Any]:
    """The sweep definition a researcher would write for this world."""
    space = world.space()
    search: dict[str, Any] = {}
    for p in space.params:
        entry: dict[str, Any] = {"kind": p.kind, "min": p.min, "max": p.max, "center": p.center}
        if p.multiple_of:
            entry["multiple_of"] = p.multiple_of
        if p.integer:
            entry["integer"] = True
        if p.scales_cost:
            entry["scales_cost"] = True
        search[p.name] = entry
    workload: dict[str, Any] = {
        "kind": "callable",
        "function": "carbs.testing.world_family:evaluate",
        "cost_function": "carbs.testing.world_family:cost",
        "fixed": dict(space.fixed),
        "num_cpus": 1,
    }
    if world.index % 2 == 0:  # half the worlds count parameters, half leave N to FLOPs / 6D
        workload["size_function"] = "carbs.testing.world_family:active_params"
    return {
        "name": f"world{world.index}-seed{seed}",
        "seed": seed,
        "storage": storage,
        "objective": {"metric": "loss", "direction": "minimize"},
        "workload": workload,
        "search_space": search,
        "constraints": [c.expr for c in space.constraints],
        "budget": {
            "max_trials": MAX_TRIALS,
            "parallel_trials": 2,
            "reproducible": True,  # the same trials on every regeneration of the cache
            "max_cost_per_trial": MAX_TRIAL_COST,
            "max_total_cost": TOTAL_COST,
        },
        "target": {"flops": TARGET},
        "scaling": {"roles": scaling_roles(world)},
    }


def trials_of(world: FamilyWorld, seed: int, how: str = "runner") -> list[Trial]:
    """The world's trials under `seed` (cached)."""
    path = CACHE / f"{how}_world{world.index}_seed{seed}.json"
    if path.is_file():
        return [Trial(**row) for row in json.loads(path.read_text())]
    trials = _run_sweep(world, seed) if how == "runner" else _ask_tell(world, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([t.__dict__ for t in trials], default=float))
    return trials


def _ask_tell(world: FamilyWorld, seed: int) -> list[Trial]:
    from carbs.optimizer import Observation
    from carbs.registry import build_optimizer

    space = world.space()
    opt = build_optimizer(
        space, seed=seed, settings={"max_cost": MAX_TRIAL_COST, "price": world.cost}
    )
    rng = np.random.default_rng([seed, world.index])
    out: list[Trial] = []
    spent = 0.0
    while spent < TOTAL_COST and len(out) < MAX_TRIALS:
        s = opt.suggest(1)[0]
        full = space.full(s.params)
        if world.cost(full) > MAX_TRIAL_COST:  # the runner's per-trial cap, as a failure
            opt.observe(Observation(s.params, world.cost(full), None, True, s.suggestion_id))
            continue
        loss, cost = world.evaluate(full, rng)
        if loss is not None and not math.isfinite(loss):  # as the runner does: a failed config
            loss = None
        opt.observe(Observation(s.params, cost, loss, loss is None, s.suggestion_id))
        out.append(Trial(full, cost, loss))
        spent += cost
    return out


def _run_sweep(world: FamilyWorld, seed: int) -> list[Trial]:
    """`carbs run` on the world's spec: SweepRunner, RayDispatcher on a local Ray, SQLite."""
    import yaml

    from experiments.dispatch import RayDispatcher, TaskResources
    from experiments.progress import PlainProgress
    from experiments.runner import SweepRunner
    from experiments.spec import parse_spec
    from experiments.store.models import TrialStatus
    from experiments.store.repository import Store

    with tempfile.TemporaryDirectory(prefix="carbs-family-") as tmp:
        storage = f"sqlite:///{Path(tmp) / 'family.db'}"
        text = yaml.safe_dump(spec_of(world, storage, seed), sort_keys=False)
        spec = parse_spec(text, f"world {world.index}")
        store = Store(storage)
        w = spec.workload
        dispatcher = RayDispatcher(w.entrypoint, TaskResources(w.num_cpus, 0))
        dispatcher.start()
        with open(Path(tmp) / "progress.log", "w") as log:
            SweepRunner(spec, text, store, dispatcher, PlainProgress(log)).run()
        rows = store.trials(store.require_sweep(spec.name).id)
        out = [
            Trial(spec.space().full(t.params), float(t.cost_flops), t.loss)
            for t in rows
            if t.status in TrialStatus.OBSERVED
            and t.cost_flops
            and math.isfinite(t.cost_flops)
            and t.failure_reason != "over_cost_limit"  # never ran: says nothing of the loss
        ]
        store.dispose()
    return out
