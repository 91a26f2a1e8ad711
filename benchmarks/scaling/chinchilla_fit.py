"""Chinchilla approach 3 on Epoch's extraction of Hoffmann et al.'s Figure 4 (240 points).

    python benchmarks/scaling/chinchilla_fit.py [--csv ../shared/data/chinchilla_fig4_points.csv]

Prints our fit with bootstrap 90 % intervals beside the published ones, the objective (the
measured global minimum is 1.018274e-3) and the time taken.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

from carbs.scaling import huber as hb
from carbs.scaling import laws

DEFAULT = (
    Path(__file__).resolve().parents[2].parent / "shared" / "data" / "chinchilla_fig4_points.csv"
)
PUBLISHED = {
    "Hoffmann 2022": {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28},
    "Besiroglu 2024": {"E": 1.817, "A": 482.0, "B": 2085.4, "alpha": 0.3478, "beta": 0.3659},
}
EPOCH_SE = {"E": 0.026, "A": 124.5, "B": 1293.3, "alpha": 0.0154, "beta": 0.0206}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--csv", type=Path, default=DEFAULT)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--all", action="store_true", help="keep the 5 worst runs (245 points)")
    a = ap.parse_args()
    rows = sorted(csv.DictReader(a.csv.open()), key=lambda r: float(r["loss"]))
    if not a.all:
        rows = rows[:-5]
    n = np.array([float(r["Model Size"]) for r in rows])
    c = np.array([float(r["Training FLOP"]) for r in rows])
    y = np.array([float(r["loss"]) for r in rows])
    t0 = time.perf_counter()
    fit = laws.fit_chinchilla(n, c / (6 * n), y)
    t1 = time.perf_counter()
    counts = hb.bootstrap_weights(len(y), a.bootstrap, np.random.default_rng(0))
    resid = laws.chinchilla_resid(np.log(n), np.log(c / (6 * n)), np.log(y))
    boot, _ = hb.batched_fit(
        resid,
        np.repeat(fit.theta[None], len(counts), 0),
        counts,
        1e-3,
        (laws.CH_LO, laws.CH_HI),
        iters=150,
    )
    t2 = time.perf_counter()
    readable = np.array([list(laws.chinchilla_readable(b).values()) for b in boot])
    ours = laws.chinchilla_readable(fit.theta)
    print(
        f"{len(y)} points; objective {fit.objective:.7e} (measured global minimum 1.018274e-3 "
        f"on 240 points); fit {t1 - t0:.2f}s, {a.bootstrap} bootstrap refits {t2 - t1:.2f}s"
    )
    print(
        f"{'':7s} {'ours':>9s} {'90% CI (bootstrap)':>24s} {'sd':>9s} | "
        f"{'Epoch (sd)':>18s} {'Hoffmann':>9s}"
    )
    for i, k in enumerate(ours):
        lo, hi = np.quantile(readable[:, i], [0.05, 0.95])
        print(
            f"{k:7s} {ours[k]:9.4g} {f'[{lo:.4g}, {hi:.4g}]':>24s} {readable[:, i].std():9.3g} | "
            f"{PUBLISHED['Besiroglu 2024'][k]:9.4g} ({EPOCH_SE[k]:.3g}) "
            f"{PUBLISHED['Hoffmann 2022'][k]:9.4g}"
        )


if __name__ == "__main__":
    main()
