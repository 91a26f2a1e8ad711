"""A joint response model: loss from size, data and the hyperparameters whose optima move with size.

    log L = LSE(a - alpha n, b - beta d, e) + sum_j k_j (z_j - c_j - m_j (n - n0))^2

with n = log N, d = log D (tokens), z_j the log (or logit) of hyperparameter j (learning rate,
batch size, warmup, ...). Why joint: fitting each hyperparameter's log against log cost on the
Pareto set extrapolates each on its own, ignores that the learning-rate optimum is set by model
size, and lets a run that is off in one setting (too few tokens for its size) pull another
setting's law. Here every successful run informs every term: a run's excess loss is explained
by how far each of its settings sits from that setting's size-dependent optimum, and the
Chinchilla part is fitted on losses corrected for those penalties. Bootstrap replicates are
rows of multiplicity weights refitted together (`huber.batched_fit`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from carbs.scaling import huber as hb
from carbs.scaling import laws

DELTA = 0.02  # Huber threshold on log loss: quadratic for noise, linear for outliers
SLOPE_PRIOR_SD = 1.0  # slope of an optimum vs log N, in z per e-fold of N
PRIOR_WEIGHT = 2.0  # pseudo-observations worth of each prior row
LK_LO, LK_HI = -12.0, 2.0


@dataclass
class ResponseFit:
    """Row 0 is the fit on the data as observed, rows 1.. bootstrap replicates."""

    theta: np.ndarray  # [B+1, 5 + 3 J]
    hp_names: list[str]
    n0: float
    objective: float
    n_points: int

    def chin(self) -> np.ndarray:
        return self.theta[:, :5]

    def hp(self, name: str) -> np.ndarray:
        """[B+1, 3]: (c, m, log k) of hyperparameter `name`."""
        j = self.hp_names.index(name)
        return self.theta[:, 5 + 3 * j : 8 + 3 * j]

    def optimum_z(self, name: str, n_params: float) -> np.ndarray:
        """The optimal z of `name` at model size N, per row."""
        h = self.hp(name)
        return h[:, 0] + h[:, 1] * (math.log(n_params) - self.n0)

    def curvature(self, name: str) -> np.ndarray:
        return np.exp(self.hp(name)[:, 2])

    def predict(self, n_params: float, tokens: float, z: dict[str, float]) -> np.ndarray:
        """Loss per row at (N, D) with the given hyperparameter coordinates (missing = optimum)."""
        base = laws.chinchilla_predict(self.chin(), np.array([n_params]), np.array([tokens]))[:, 0]
        pen = np.zeros(len(self.theta))
        for name in self.hp_names:
            if name in z:
                u = z[name] - self.optimum_z(name, n_params)
                pen += self.curvature(name) * u * u
        return base * np.exp(pen)

    def summary(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "model": "log L = LSE(a - alpha log N, b - beta log D, e) "
            "+ sum_j k_j (z_j - c_j - m_j (log N - n0))^2",
            "n0": self.n0,
            "objective": self.objective,
            "n_points": self.n_points,
            "chinchilla": laws.chinchilla_readable(self.theta[0, :5]),
            "hyperparameters": {},
        }
        for name in self.hp_names:
            h = self.hp(name)
            boot = h[1:] if len(h) > 1 else h
            d["hyperparameters"][name] = {
                "c": float(h[0, 0]),
                "slope_vs_logN": float(h[0, 1]),
                "slope_ci90": [float(v) for v in np.quantile(boot[:, 1], [0.05, 0.95])],
                "curvature": float(math.exp(h[0, 2])),
            }
        return d


def response_resid(n: np.ndarray, d: np.ndarray, y: np.ndarray, Z: np.ndarray, n0: float,
                   prior_c: np.ndarray) -> hb.ResidFn:  # fmt: skip
    """Residuals (data rows, then prior rows on each optimum's level and slope)."""
    J = Z.shape[1]
    dn = n - n0
    w_prior = math.sqrt(PRIOR_WEIGHT)

    def f(th: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        B = len(th)
        a, b, e, al, be = (th[:, i : i + 1] for i in range(5))
        pred, (s1, s2, s3) = laws._lse([a - al * n, b - be * d, np.broadcast_to(e, (B, len(y)))])
        jac = np.zeros((B, len(y) + 2 * J, th.shape[1]))
        jac[:, : len(y), :5] = np.stack([-s1, -s2, -s3, s1 * n, s2 * d], axis=-1)
        pr = np.zeros((B, 2 * J))
        for j in range(J):
            c, m, lk = th[:, 5 + 3 * j : 6 + 3 * j], th[:, 6 + 3 * j : 7 + 3 * j], th[:, 7 + 3 * j]
            k = np.exp(lk)[:, None]
            u = Z[None, :, j] - c - m * dn
            pred = pred + k * u * u
            jac[:, : len(y), 5 + 3 * j] = 2 * k * u
            jac[:, : len(y), 6 + 3 * j] = 2 * k * u * dn
            jac[:, : len(y), 7 + 3 * j] = -k * u * u
            # priors: a flat-ish optimum level near the data, and a modest slope
            pr[:, 2 * j] = w_prior * DELTA * (c[:, 0] - prior_c[j]) / 2.0
            jac[:, len(y) + 2 * j, 5 + 3 * j] = w_prior * DELTA / 2.0
            pr[:, 2 * j + 1] = w_prior * DELTA * m[:, 0] / SLOPE_PRIOR_SD
            jac[:, len(y) + 2 * j + 1, 6 + 3 * j] = w_prior * DELTA / SLOPE_PRIOR_SD
        r = np.concatenate([y - pred, -pr], axis=1)
        jac[:, len(y) :, :] *= -1
        return r, jac

    return f


def fit_response(
    n_params: np.ndarray,
    tokens: np.ndarray,
    loss: np.ndarray,
    Z: np.ndarray,
    hp_names: list[str],
    counts: np.ndarray,
    near: np.ndarray,
    chin_start: np.ndarray,
) -> ResponseFit:
    """Fit the joint model on all successful runs; `counts` [B+1, n] (row 0 all ones).

    `near` weights runs by nearness to the frontier, used only to start each optimum at the
    settings of the best runs; `chin_start` is a Chinchilla fit to start the size terms from.
    """
    n, d, y = np.log(n_params), np.log(tokens), np.log(loss)
    n0 = float(np.mean(n))
    J = Z.shape[1]
    wn = near / max(near.sum(), 1e-12)
    prior_c = (wn[:, None] * Z).sum(0) if J else np.zeros(0)
    resid = response_resid(n, d, y, Z, n0, prior_c)
    lo = np.concatenate([laws.CH_LO] + [[-50.0, -3.0, LK_LO]] * J)
    hi = np.concatenate([laws.CH_HI] + [[50.0, 3.0, LK_HI]] * J)
    starts = []
    for lk in (math.log(0.01), math.log(0.1)):
        for shift in (0.0, 0.3):
            s = [np.asarray(chin_start, float)]
            for j in range(J):
                s.append(np.array([prior_c[j] - shift, -0.2 * shift, lk]))
            starts.append(np.concatenate(s))
    starts_arr = np.clip(np.array(starts), lo, hi)
    w_rows = np.concatenate(
        [np.ones((len(starts_arr), len(y))), np.ones((len(starts_arr), 2 * J))], 1
    )
    th, fv = hb.batched_fit(resid, starts_arr, w_rows, DELTA, lo, hi, iters=300)
    best = th[int(np.argmin(fv))]
    w_boot = np.concatenate([counts, np.ones((len(counts), 2 * J))], 1)
    boot, _ = hb.batched_fit(resid, np.repeat(best[None], len(counts), 0), w_boot, DELTA, lo, hi,
                             iters=150)  # fmt: skip
    boot[0] = best
    return ResponseFit(boot, list(hp_names), n0, float(np.min(fv)), len(y))
