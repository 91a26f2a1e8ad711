"""Output and cost transforms: what the GPs model instead of raw loss and raw cost.

Why: losses have outliers (a near-diverged run at 9.0 among runs at 3.1) that wreck a GP fit.
CARBS models the normal scores of the losses (a quantile warp) instead; with fewer quantiles
than points, distance information within a quantile is kept. Costs span decades (FLOPs from
1e10 to 1e20), so the cost GP models log-cost scaled to [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm


@dataclass(frozen=True)
class QuantileWarp:
    """Map losses to a standard-normal "surrogate" where higher is better.

    `levels` are cumulative probabilities at the midpoints of `n_quantiles` bins and
    `quantiles` the matching loss values; between them the map is linear, beyond them it
    extrapolates linearly with the end slopes (so a candidate better than every observation
    keeps a finite, larger surrogate value instead of being clipped).
    """

    quantiles: np.ndarray
    levels: np.ndarray

    @classmethod
    def fit(cls, losses: np.ndarray) -> QuantileWarp:
        y = np.sort(np.asarray(losses, dtype=float))
        n = len(y)
        nq = max(2, min(n, int(np.ceil(np.sqrt(n))) + 1))
        probs = (np.arange(nq) + 0.5) / nq
        q = np.quantile(y, probs)
        # strictly increasing knots so the map is invertible (ties collapse to one knot)
        keep = np.concatenate([[True], np.diff(q) > 1e-12 * max(1.0, abs(q).max())])
        q, probs = q[keep], probs[keep]
        if len(q) < 2:
            q = np.array([y[0] - 0.5, y[0] + 0.5])
            probs = np.array([0.25, 0.75])
        return cls(quantiles=q, levels=norm.ppf(probs))

    def to_surrogate(self, losses: np.ndarray) -> np.ndarray:
        """Losses (any shape) -> surrogate values (same shape), higher is better."""
        x = np.asarray(losses, dtype=float)
        q, s = self.quantiles, self.levels
        out = np.interp(x, q, s)
        lo_slope = (s[1] - s[0]) / (q[1] - q[0])
        hi_slope = (s[-1] - s[-2]) / (q[-1] - q[-2])
        out = np.where(x < q[0], s[0] + (x - q[0]) * lo_slope, out)
        out = np.where(x > q[-1], s[-1] + (x - q[-1]) * hi_slope, out)
        return -out

    def to_loss(self, surrogate: np.ndarray) -> np.ndarray:
        """Inverse of `to_surrogate` (for logging predicted losses)."""
        s = -np.asarray(surrogate, dtype=float)
        q, lv = self.quantiles, self.levels
        out = np.interp(s, lv, q)
        lo_slope = (q[1] - q[0]) / (lv[1] - lv[0])
        hi_slope = (q[-1] - q[-2]) / (lv[-1] - lv[-2])
        out = np.where(s < lv[0], q[0] + (s - lv[0]) * lo_slope, out)
        return np.where(s > lv[-1], q[-1] + (s - lv[-1]) * hi_slope, out)


@dataclass(frozen=True)
class LogCostScale:
    """log(cost) min-max scaled to [-1, 1] over the observed costs."""

    lo: float
    hi: float

    @classmethod
    def fit(cls, costs: np.ndarray) -> LogCostScale:
        lc = np.log(np.maximum(np.asarray(costs, dtype=float), 1e-300))
        lo, hi = float(lc.min()), float(lc.max())
        if hi - lo < 1e-9:
            lo, hi = lo - 0.5, hi + 0.5
        return cls(lo, hi)

    def forward(self, costs: np.ndarray) -> np.ndarray:
        lc = np.log(np.maximum(np.asarray(costs, dtype=float), 1e-300))
        return 2.0 * (lc - self.lo) / (self.hi - self.lo) - 1.0

    def inverse(self, scaled: np.ndarray) -> np.ndarray:
        return np.exp((np.asarray(scaled, dtype=float) + 1.0) / 2.0 * (self.hi - self.lo) + self.lo)
