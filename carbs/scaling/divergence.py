"""Where runs diverge: a logistic boundary in (learning-rate offset, log model size).

Why offsets: a learning rate is only "high" relative to the optimum for its size, so the
boundary is fitted on u = log lr - lr_opt(N) from the joint response model, plus a tilt with
log N (the cliff may close in on the optimum as models grow). With a handful of failures the
tilt is unidentifiable, so it carries a tight prior at zero (cliff parallel to the optimum) and
only a tilt that brings the cliff closer is ever extrapolated. Without any failure the cliff is
unobserved and the pick stays at or below the optimum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

SOFTNESS = 0.15  # log-lr width of the cliff (fixed: a free width needs many failures)
TILT_PRIOR_SD = 0.1


@dataclass
class Cliff:
    """P(fail | u, n) = sigmoid((u - delta - tilt (n - n0)) / s)."""

    delta: float
    tilt: float
    n0: float
    s: float
    observed: bool
    n_failed: int
    max_ok_offset: float

    def boundary(self, log_n: float) -> float:
        """The offset at which P(fail) = 1/2 at log N; a tilt only ever moves it closer."""
        return self.delta + min(self.tilt * (log_n - self.n0), 0.0) if self.observed else math.inf

    def p_fail(self, u: float, log_n: float) -> float:
        if not self.observed:
            return 0.0 if u <= self.max_ok_offset else float("nan")
        x = (u - self.boundary(log_n)) / self.s
        return float(1.0 / (1.0 + math.exp(-min(max(x, -700.0), 700.0))))

    def safe_offset(self, log_n: float, p: float = 0.05) -> float:
        """Largest offset above the optimum with P(fail) <= p; without failures, 0 (or lower
        when even the optimum was never survived)."""
        if not self.observed:
            return min(0.0, self.max_ok_offset)
        return self.boundary(log_n) + self.s * math.log(p / (1 - p))

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": "P(fail) = sigmoid((log lr - lr_opt(N) - delta - tilt (log N - n0)) / s)",
            "delta": self.delta,
            "tilt": self.tilt,
            "n0": self.n0,
            "s": self.s,
            "cliff_observed": self.observed,
            "n_failed": self.n_failed,
            "max_surviving_offset": self.max_ok_offset,
        }


def fit_cliff(u_ok: np.ndarray, n_ok: np.ndarray, u_fail: np.ndarray, n_fail: np.ndarray) -> Cliff:
    """MAP of (delta, tilt) on a grid (fixed softness; Gaussian prior on the tilt)."""
    u_ok, n_ok = np.asarray(u_ok, float), np.asarray(n_ok, float)
    u_fail, n_fail = np.asarray(u_fail, float), np.asarray(n_fail, float)
    max_ok = float(np.max(u_ok)) if len(u_ok) else 0.0
    n0 = float(np.mean(np.concatenate([n_ok, n_fail]))) if len(n_ok) + len(n_fail) else 0.0
    if len(u_fail) == 0:
        return Cliff(math.inf, 0.0, n0, SOFTNESS, False, 0, max_ok)
    lo = min(u_ok.min(initial=0.0), u_fail.min()) - 1.0
    hi = max(u_ok.max(initial=0.0), u_fail.max()) + 1.0
    deltas = np.linspace(lo, hi, 601)
    tilts = np.linspace(-0.5, 0.5, 41)
    D, T = np.meshgrid(deltas, tilts, indexing="ij")
    s = SOFTNESS

    def edge(n: np.ndarray) -> np.ndarray:
        return D[..., None] + T[..., None] * (n[None, None, :] - n0)

    ll = -np.logaddexp(0, -(u_fail[None, None, :] - edge(n_fail)) / s).sum(-1)
    ll += -np.logaddexp(0, (u_ok[None, None, :] - edge(n_ok)) / s).sum(-1)
    ll -= 0.5 * (T / TILT_PRIOR_SD) ** 2
    i, j = np.unravel_index(int(np.argmax(ll)), ll.shape)
    return Cliff(float(deltas[i]), float(tilts[j]), n0, s, True, int(len(u_fail)), max_ok)
