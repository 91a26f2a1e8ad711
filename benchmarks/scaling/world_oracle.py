"""A floor for the pick's loss-prediction error on the scaling world: how well can the loss at
100x be predicted from the same trials by a fitter that knows the world's form?

Fits only E, A, B, alpha, beta (least squares on log loss, a grid of starts) of

    L = E + (A / N^alpha + B g^eta / D^beta) (1 + P)

to the design's runs, with what else it is told, and predicts the loss of a pick (read from a
`world_pick.py --out` file) at its config. What it is told, by `--size`: the world's hidden
effective size (`eff`), FLOPs / 6 per token (`flops`, what the pick uses) or the parameter count
(`params`); `--moe-terms` adds the joint model's sparsity terms (size level quadratic in
u = log(experts / top_k)); `--no-penalty` drops the settings' penalty P (known otherwise).

    python benchmarks/scaling/world_pick.py --seeds 0 1 2 3 4 --out /tmp/picks.json
    python benchmarks/scaling/world_oracle.py --picks /tmp/picks.json --size flops --moe-terms
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from carbs.testing.scaling_world import ScalingWorld

try:
    from world_pick import design_points
except ImportError:  # run as a module from the repository root
    from benchmarks.scaling.world_pick import design_points


def run_features(w: ScalingWorld, p: dict[str, Any], size: str, penalty: bool) -> list[float]:
    """(N, tokens, experts per token, P) of one config, N as the oracle is told it."""
    d, L = float(p["d_model"]), float(p["n_layers"])
    e, k, D = float(p["n_experts"]), float(p["top_k"]), float(p["tokens"])
    n_eff = w._n_eff(d, L, e, k)
    n = {"eff": n_eff, "flops": w.flops_per_token(p) / 6.0, "params": w.param_count(p)}[size]
    pen = w.settings_penalty(p) if penalty else 0.0
    return [n, D, max(e / k, 1.0), pen]


def fit_and_predict(w: ScalingWorld, X: np.ndarray, y: np.ndarray, x_new: np.ndarray,
                    moe_terms: bool) -> float:  # fmt: skip
    """Best of a grid of least-squares starts; the predicted loss at x_new."""
    u0 = float(np.mean(np.log(X[:, 2])))
    eta = w.k.eta

    def log_loss(th: np.ndarray, X: np.ndarray) -> np.ndarray:
        E, la, lb, a, b, m1, m2 = th
        n, D, g, pen = X.T
        u = np.log(g) - u0
        size = np.exp(la + m1 * u + m2 * u * u) * n**-a
        return np.log(E + (size + np.exp(lb) * g**eta * D**-b) * (1 + pen))

    lo = [0.0, -5, -5, 0.01, 0.01, -2 if moe_terms else -1e-9, -0.5 if moe_terms else -1e-9]
    hi = [5.0, 30, 30, 2, 2, 2 if moe_terms else 1e-9, 0.5 if moe_terms else 1e-9]
    best = None
    for E0 in (0.5, 1.0, 1.5, 2.0):
        for a0 in (0.2, 0.35, 0.5):
            for b0 in (0.2, 0.35, 0.5):
                r = least_squares(lambda th: log_loss(th, X) - y, [E0, 6, 6, a0, b0, 0, 0],
                                  bounds=(lo, hi))  # fmt: skip
                if best is None or r.cost < best.cost:
                    best = r
    return float(math.exp(log_loss(best.x, x_new[None])[0]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--picks", type=Path, required=True, help="a world_pick.py --out file")
    ap.add_argument("--size", choices=["eff", "flops", "params"], default="eff")
    ap.add_argument("--moe-terms", action="store_true")
    ap.add_argument("--no-penalty", action="store_true")
    ap.add_argument("--design", default="frontier", help="the design the picks were made on")
    ap.add_argument("--cache", type=Path, default=Path("benchmarks/results/world_designs"))
    a = ap.parse_args()
    res = json.loads(a.picks.read_text())
    rows = res if isinstance(res, list) else res["rows"]
    errors = []
    for row in rows:
        w = ScalingWorld(seed=row["seed"], noise=0.005)
        rng = np.random.default_rng([row["seed"], 99])
        pts = design_points(w, row["n_trials"], a.design, rng, a.cache)
        pts = [p for p in pts if not p.failed]
        feats = [run_features(w, p.params, a.size, not a.no_penalty) for p in pts]
        X, y = np.array(feats), np.log([p.loss for p in pts])
        pick = w.space().full(dict(row["pick"]))
        pick["tokens"] = row["target_flops"] / w.flops_per_token(pick)
        x_new = np.array(run_features(w, pick, a.size, not a.no_penalty))
        err = fit_and_predict(w, X, y, x_new, a.moe_terms) / w.true_loss(pick) - 1
        errors.append(err)
        print(f"seed {row['seed']}: oracle prediction error {100 * err:+.2f}%")
    print(
        f"mean |error| {100 * np.mean(np.abs(errors)):.2f}%  max {100 * np.max(np.abs(errors)):.2f}%"
    )


if __name__ == "__main__":
    main()
