"""Benchmark the large-run pick on the synthetic scaling world.

For each world seed: collect trials (a space-filling design around the frontier, or an
optimizer run), pick at 100x the costliest trial's compute, and score the pick against the
world's true optimum: regret = true_loss(pick) / optimal_loss(target) - 1, and prediction
error = predicted_loss / true_loss(pick) - 1.

    python benchmarks/scaling/world_pick.py --seeds 0 1 2 3 4 --trials 24 --design frontier
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from carbs.scaling.pick import pick_large_run
from carbs.scaling.types import TrialPoint
from carbs.testing.scaling_world import ScalingWorld

MAX_TRIAL_COST = 1e18  # the optimizer designs' per-trial cap: the frontier design's top budget


def frontier_design(
    world: ScalingWorld,
    n: int,
    rng: np.random.Generator,
    c_lo: float = 1e16,
    c_hi: float = 1e18,
    spread: float = 0.5,
) -> list[dict[str, Any]]:
    """Latin-hypercube perturbations (log scale, +-spread) of the optimum at log-spaced budgets.

    Stands in for a converged optimizer: the runs sit around, not on, the true frontier.
    """
    sp = world.space()
    names = ["d_model", "n_layers", "n_experts", "learning_rate", "batch_size", "warmup_frac"]
    u = (
        rng.permuted(np.tile(np.arange(n), (len(names), 1)), axis=1).T + rng.random((n, len(names)))
    ) / n
    budgets = np.exp(np.linspace(math.log(c_lo), math.log(c_hi), n))
    rng.shuffle(budgets)
    out = []
    for i in range(n):
        cfg = world.optimal_config(float(budgets[i]))
        q = dict(cfg)
        for j, nm in enumerate(names):
            q[nm] = sp.param(nm).clamp(cfg[nm] * math.exp(spread * (2 * u[i, j] - 1)))
        q["top_k"] = min(int(rng.integers(1, 5)), q["n_experts"])
        q["tokens"] = float(budgets[i]) / world.flops_per_token(q)
        out.append(q)
    return out


def optimizer_design(
    world: ScalingWorld, n: int, rng: np.random.Generator, name: str, max_cost: float
) -> list[dict[str, Any]]:
    """Run a registered optimizer on the world for n trials (ask/tell, one at a time), with
    the per-trial cost cap a sweep's `max_cost_per_trial` would give it."""
    from carbs.optimizer import Observation
    from carbs.registry import accepts, build_optimizer

    cap = {"max_cost": max_cost} if accepts(name, "max_cost") else {}
    opt = build_optimizer(world.space(), seed=int(rng.integers(1 << 30)), name=name, settings=cap)
    out = []
    for _ in range(n):
        s = opt.suggest(1)[0]
        full = world.space().full(s.params)
        loss, cost = world.evaluate(full, rng)
        opt.observe(Observation(s.params, cost, loss, loss is None, s.suggestion_id))
        out.append(full)
    return out


def design_points(
    world: ScalingWorld,
    n: int,
    design: str,
    rng: np.random.Generator,
    cache: Path | None,
    max_cost: float = MAX_TRIAL_COST,
) -> list[TrialPoint]:
    """The trials of one seed; optimizer designs are cached (they take minutes to produce)."""
    tag = f"{design}_seed{world.seed}_n{n}_noise{world.noise}_cap{max_cost:.0e}"
    path = cache / f"{tag}.json" if cache else None
    if path is not None and design != "frontier" and path.exists():
        rows = json.loads(path.read_text())
        return [TrialPoint(params=r["params"], cost=r["cost"], loss=r["loss"],
                           failed=r["loss"] is None) for r in rows]  # fmt: skip
    cfgs = (
        frontier_design(world, n, rng)
        if design == "frontier"
        else optimizer_design(world, n, rng, design, max_cost)
    )
    points = []
    for c in cfgs:
        loss, cost = world.evaluate(c, rng)
        points.append(TrialPoint(params=c, cost=cost, loss=loss, failed=loss is None))
    if path is not None and design != "frontier":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps([{"params": p.params, "cost": p.cost, "loss": p.loss}
                                    for p in points], default=float))  # fmt: skip
    return points


def run_seed(
    seed: int,
    n: int,
    design: str,
    noise: float,
    n_boot: int,
    cache: Path | None = None,
    count_params: bool = False,
) -> dict[str, Any]:
    world = ScalingWorld(seed=seed, noise=noise)
    rng = np.random.default_rng([seed, 99])
    points = design_points(world, n, design, rng, cache)
    max_cost = max(p.cost for p in points)
    target = 100 * max_cost
    t = time.perf_counter()
    pick = pick_large_run(
        points,
        world.space(),
        target,
        cost_fn=world.cost,
        size_fn=world.param_count if count_params else None,
        seed=seed,
        n_bootstrap=n_boot,
    )
    elapsed = time.perf_counter() - t
    true = world.true_loss(pick.params)
    best = world.optimal_loss(target)
    opt = world.optimal_config(target)
    return {
        "seed": seed,
        "n_trials": n,
        "n_failed": sum(p.failed for p in points),
        "trial_cost_range": [min(p.cost for p in points), max_cost],
        "target_flops": target,
        "pick_seconds": elapsed,
        "diverged": not math.isfinite(true),
        "regret": true / best - 1 if math.isfinite(true) else None,
        "pred_err": pick.predicted_loss / true - 1 if math.isfinite(true) else None,
        "ci_covers": bool(pick.predicted_loss_ci[0] <= true <= pick.predicted_loss_ci[1]),
        "predicted": pick.predicted_loss,
        "ci": list(pick.predicted_loss_ci),
        "true_loss": true,
        "optimal_loss": best,
        "pick": {k: pick.params[k] for k in world.space().names},
        "optimal": {k: opt[k] for k in world.space().names},
        "cost_ratio": world.cost(pick.params) / target,
        "warnings": pick.warnings,
        "predicted_parts_err": {
            k: v / true - 1 if math.isfinite(true) else None
            for k, v in pick.fits.get("predicted_loss_parts", {}).items()
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--design", default="frontier", help="'frontier' or an optimizer name")
    ap.add_argument("--noise", type=float, default=0.005)
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/world_pick.json"))
    ap.add_argument(
        "--cache",
        type=Path,
        default=Path("benchmarks/results/world_designs"),
        help="where optimizer-produced trial sets are kept between runs ('' disables)",
    )
    ap.add_argument(
        "--size",
        choices=("params", "flops"),
        default="flops",
        help="N of the fits: FLOPs / (6 tokens) (default) or the active parameter count",
    )
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    cache = a.cache if str(a.cache) else None
    rows = [run_seed(s, a.trials, a.design, a.noise, a.bootstrap, cache, a.size == "params")
            for s in a.seeds]  # fmt: skip
    for r in rows:
        reg = "diverged" if r["diverged"] else f"{100 * r['regret']:6.2f}%"
        pe = "" if r["pred_err"] is None else f"{100 * r['pred_err']:+6.2f}%"
        print(
            f"seed {r['seed']}: regret {reg}  pred err {pe}  CI covers {r['ci_covers']} "
            f"[{100 * (r['ci'][0] / r['predicted'] - 1):+.1f}%, "
            f"{100 * (r['ci'][1] / r['predicted'] - 1):+.1f}%]  "
            f"cost ratio {r['cost_ratio']:.3f}  {r['pick_seconds']:.2f}s  failed {r['n_failed']}  "
            f"trials {r['trial_cost_range'][0]:.2g}..{r['trial_cost_range'][1]:.2g} FLOPs"
        )
        if a.verbose:
            print(
                "   pick   ",
                {k: (round(v, 6) if isinstance(v, float) else v) for k, v in r["pick"].items()},
            )
            print(
                "   optimal",
                {k: (round(v, 6) if isinstance(v, float) else v) for k, v in r["optimal"].items()},
            )
            print("   warnings", r["warnings"])
            print(
                "   predictors' errors",
                {
                    k: f"{100 * v:+.2f}%"
                    for k, v in r["predicted_parts_err"].items()
                    if v is not None
                },
            )
    ok = [r for r in rows if not r["diverged"]]
    if ok:
        print(
            f"mean regret {100 * np.mean([r['regret'] for r in ok]):.2f}%  "
            f"max regret {100 * max(r['regret'] for r in ok):.2f}%  "
            f"mean |pred err| {100 * np.mean([abs(r['pred_err']) for r in ok]):.2f}%  "
            f"max |pred err| {100 * max(abs(r['pred_err']) for r in ok):.2f}%  "
            f"diverged {len(rows) - len(ok)}/{len(rows)}"
        )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(rows, indent=1, default=float))


if __name__ == "__main__":
    main()
