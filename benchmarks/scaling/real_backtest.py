"""Backtest the scaling model on a real stored sweep at a chosen extrapolation ratio.

Fit on the trials that cost at most 1/ratio of the costliest one; score on the costlier
Pareto-frontier trials, which lie up to `ratio` x past everything fitted:

- the fitted compute-optimal loss curve (with its 90 % band) at each held-out frontier trial;
- the pick: `pick_large_run` on the cheap trials for the costliest frontier trial's compute,
  its predicted loss (and interval) against the best loss the sweep observed at that compute.

    python benchmarks/scaling/real_backtest.py --store sqlite:///carbs.db --sweep moe_law --ratio 5 --train 101 102

The store is read through a snapshot (SQLite's backup API for a file), so a running sweep is
not disturbed.
"""

from __future__ import annotations

import argparse
import json
import math
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from carbs.pareto import pareto_mask
from carbs.scaling.pick import FitOptions, LargeRunPick, Workload, pick_large_run
from carbs.scaling.types import TrialPoint
from experiments.dispatch.recorder import load_price
from experiments.large_run import load_size, trial_points
from experiments.spec import SweepSpec
from experiments.store.repository import Store


def snapshot(url: str, into: Path) -> str:
    """A read-only copy of a SQLite store (other URLs are read in place)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return url
    src = sqlite3.connect(f"file:{url[len(prefix) :]}?mode=ro", uri=True)
    dst = sqlite3.connect(into)
    src.backup(dst)
    dst.close()
    src.close()
    return f"{prefix}{into}"


def load(url: str, sweep: str) -> tuple[SweepSpec, list[TrialPoint]]:
    store = Store(url)
    row = store.require_sweep(sweep)
    spec = SweepSpec.model_validate(row.spec)
    return spec, trial_points(spec, store.trials(row.id, with_curves=True))


def _curve_at(pick: LargeRunPick, cost: float) -> tuple[float, float, float]:
    """The fitted compute-optimal loss and its 90 % band at `cost` (log-log interpolation)."""
    curve = pick.fits["optimal_loss_curve"]
    x = np.log(curve["compute"])
    return tuple(  # type: ignore[return-value]
        float(np.exp(np.interp(math.log(cost), x, np.log(curve[k])))) for k in ("loss", "lo", "hi")
    )


def backtest_at(
    spec: SweepSpec, points: list[TrialPoint], ratio: float, n_boot: int, seed: int
) -> dict[str, Any]:
    """Fit below max cost / ratio, score the held-out frontier and the pick at its top."""
    ok = [p for p in points if not p.failed and p.loss is not None and math.isfinite(p.loss)]
    costs = np.array([p.cost for p in ok])
    loss = np.array([p.loss for p in ok])
    split = float(costs.max()) / ratio
    train = costs <= split
    test = pareto_mask(costs, loss) & ~train
    if train.sum() < 5 or not test.any():
        raise SystemExit(
            f"ratio {ratio}: {int(train.sum())} trials below {split:.3g} FLOPs and "
            f"{int(test.sum())} frontier trials above: too few to backtest; try a smaller ratio"
        )
    target = float(costs[test].max())
    fitted = [p for p in points if p.cost <= split]
    workload = Workload(load_price(spec), load_size(spec), spec.scaling.roles or None)
    pk = pick_large_run(
        fitted, spec.space(), target, workload, FitOptions(seed=seed, n_bootstrap=n_boot)
    )
    train_max = float(costs[train].max())
    rows = []
    for c, y in zip(costs[test], loss[test], strict=True):
        mid, lo, hi = _curve_at(pk, float(c))
        rows.append(
            {
                "cost": float(c),
                "extrapolation": float(c / train_max),
                "observed": float(y),
                "predicted": mid,
                "rel_err": mid / float(y) - 1,
                "ci90": [lo, hi],
                "covered": bool(lo <= y <= hi),
            }
        )
    best_seen = float(loss[costs >= target * 0.999].min())
    return {
        "ratio": ratio,
        "n_trials": len(ok),
        "n_train": int(train.sum()),
        "train_cost_range": [float(costs[train].min()), train_max],
        "frontier_test": rows,
        "pick": {
            "target_flops": target,
            "extrapolation": target / train_max,
            "params": {k: pk.params.get(k) for k in spec.space().names},
            "predicted_loss": pk.predicted_loss,
            "ci90": list(pk.predicted_loss_ci),
            "best_observed_at_target": best_seen,
            "rel_err_vs_best_observed": pk.predicted_loss / best_seen - 1,
            "warnings": pk.warnings,
        },
    }


def train_pick(spec: SweepSpec, pick: dict[str, Any], seed: int) -> dict[str, float]:
    """Train the picked config once (the built-in MoE workload) and print it beside the
    prediction: the backtest's pick checked by a real run, not only by the sweep's best."""
    from models.workload import train_moe

    params = {**spec.space().full(pick["params"]), "seed": seed}
    t0 = time.perf_counter()
    out = train_moe(params)
    row = {
        "seed": seed,
        "loss": float(out["loss"]),
        "cost": float(out["cost"]),
        "seconds": time.perf_counter() - t0,
    }
    print(
        f"  trained (seed {seed}): loss {row['loss']:.4f}, {row['cost']:.3g} FLOPs, "
        f"{row['seconds']:.0f} s; predicted {pick['predicted_loss']:.4f} "
        f"({100 * (pick['predicted_loss'] / row['loss'] - 1):+.1f} %)",
        flush=True,
    )
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--store", required=True, help="SQLAlchemy URL of the sweep's store")
    ap.add_argument("--sweep", required=True)
    ap.add_argument("--ratio", type=float, nargs="+", default=[10.0])
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/real_backtest.json"))
    ap.add_argument(
        "--train",
        type=int,
        nargs="*",
        default=[],
        metavar="SEED",
        help="also train each ratio's pick for real with these seeds (the sweep's workload)",
    )
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        spec, points = load(snapshot(a.store, Path(tmp) / "copy.db"), a.sweep)
    results = []
    for r in a.ratio:
        res = backtest_at(spec, points, r, a.bootstrap, a.seed)
        results.append(res)
        print(
            f"ratio {r:g}: fitted {res['n_train']} of {res['n_trials']} trials "
            f"({res['train_cost_range'][0]:.3g}..{res['train_cost_range'][1]:.3g} FLOPs)"
        )
        for t in res["frontier_test"]:
            print(
                f"  frontier trial {t['cost']:.3g} FLOPs ({t['extrapolation']:.1f}x): observed "
                f"{t['observed']:.4f}, the optimal-loss curve predicts {t['predicted']:.4f} "
                f"({100 * t['rel_err']:+.1f} %), 90 % [{t['ci90'][0]:.3f}, {t['ci90'][1]:.3f}]"
                f"{'' if t['covered'] else ' (missed)'}"
            )
        pk = res["pick"]
        print(
            f"  pick at {pk['target_flops']:.3g} FLOPs ({pk['extrapolation']:.1f}x): predicted "
            f"{pk['predicted_loss']:.4f} [{pk['ci90'][0]:.3f}, {pk['ci90'][1]:.3f}], best observed "
            f"there {pk['best_observed_at_target']:.4f} ({100 * pk['rel_err_vs_best_observed']:+.1f} %)"
        )
        print(f"  picked {pk['params']}")
        pk["trained"] = [train_pick(spec, pk, seed) for seed in a.train]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
