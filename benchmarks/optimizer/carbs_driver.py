"""Run one CARBS-API optimizer on one family problem, sequentially, and print the trials as JSON.

    python benchmarks/optimizer/carbs_driver.py --impl imbue|ours|ours_cat --problem cliff --seed 0 --trials 30

Runs as a subprocess in the optimizer's own venv: `--impl imbue` imports Imbue's package
(`carbs`, installed in /tmp/imbue-venv), `--impl ours` our drop-in `carbs.compat` (the repo
on PYTHONPATH). Both get the same problem (`family.py`, imported from this folder: pure
numpy), the same CARBSParams and the same noise stream. Nothing here imports our package
otherwise, so Imbue's `carbs` is the only `carbs` in its process.

`--impl ours_cat` (moe only) runs our optimizer natively on a `carbs.space.SearchSpace` where
n_experts and top_k are true categoricals ({4, 8, 16, 32}, {1, 2, 4}) instead of integer log
params, with the settings `carbs.compat` derives from the same CARBSParams.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import family
import numpy as np
import torch


def _load(impl: str):
    if impl == "imbue":
        os.environ.setdefault("WANDB_MODE", "disabled")
        import carbs as api
    else:
        import carbs.compat as api
    return api


def _params(api, problem: family.FamilyProblem) -> list:
    kinds = {"log": api.LogSpace, "linear": api.LinearSpace, "logit": api.LogitSpace}
    return [
        api.Param(
            name=s.name,
            space=kinds[s.kind](min=s.min, max=s.max, scale=s.scale, is_integer=s.integer),
            search_center=s.center,
        )
        for s in problem.params
    ]


CATEGORICAL = {"n_experts": (4, 8, 16, 32), "top_k": (1, 2, 4)}


class _NativeCategorical:
    """Our optimizer on the moe problem with categorical n_experts / top_k, behind the same
    suggest / observe calls as the CARBS API."""

    def __init__(self, api, config, params: list) -> None:
        from carbs.bayes import CarbsOptimizer
        from carbs.space import Param, SearchSpace

        space = SearchSpace(
            tuple(
                Param(p.name, "categorical", choices=CATEGORICAL[p.name], center=p.search_center)
                if p.name in CATEGORICAL
                else p.space.to_param(p.name, p.search_center)
                for p in params
            )
        )
        from carbs.compat import optimizer_settings  # the settings compat's CARBS uses

        self.opt = CarbsOptimizer(space, **optimizer_settings(config))
        self.api = api

    def suggest(self):
        (s,) = self.opt.suggest(1)
        return self.api.SuggestOutput(suggestion={**s.params, "suggestion_uuid": s.suggestion_id})

    def observe(self, o) -> None:
        from carbs.optimizer import Observation

        params = {k: v for k, v in o.input.items() if k != "suggestion_uuid"}
        loss = None if o.is_failure else float(o.output)
        self.opt.observe(
            Observation(
                params, o.cost, loss, failed=o.is_failure, suggestion_id=o.input["suggestion_uuid"]
            )
        )


def run(impl: str, name: str, seed: int, trials: int) -> dict:
    api = _load(impl)
    problem = family.make(name)
    config = api.CARBSParams(
        better_direction_sign=-1,
        seed=seed,
        is_wandb_logging_enabled=False,
        is_saved_on_every_observation=False,
        max_suggestion_cost=max(problem.budgets),
    )
    if impl == "ours_cat":
        opt = _NativeCategorical(api, config, _params(api, problem))
    else:
        opt = api.CARBS(config, _params(api, problem))
    rng = np.random.default_rng([seed, 2020])
    rows = []
    start = time.perf_counter()
    for _ in range(trials):
        t = time.perf_counter()
        suggestion = opt.suggest().suggestion
        suggest_s = time.perf_counter() - t
        values = {s.name: float(suggestion[s.name]) for s in problem.params}
        legal = problem.legal(values)
        loss, cost = problem.evaluate(legal, rng)
        failed = loss is None
        opt.observe(
            api.ObservationInParam(
                input=suggestion,
                output=math.nan if failed else loss,
                cost=cost,
                is_failure=failed,
            )
        )
        true = problem.true_loss(legal)
        rows.append(
            {
                "params": legal,
                "cost": cost,
                "loss": loss,
                "true_loss": true,
                "failed": failed,
                "suggest_s": suggest_s,
            }
        )
    return {
        "impl": impl,
        "problem": name,
        "seed": seed,
        "trials": rows,
        "wall_s": time.perf_counter() - start,
        "max_suggestion_cost": config.max_suggestion_cost,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--impl", choices=["imbue", "ours", "ours_cat"], required=True)
    ap.add_argument("--problem", required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--trials", type=int, required=True)
    a = ap.parse_args()
    torch.set_num_threads(1)
    result = run(a.impl, a.problem, a.seed, a.trials)
    sys.stdout.write("\nRESULT " + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
