"""Laws of each scaled hyperparameter against compute, and the divergence (failure) model.

Why weight by nearness to the frontier rather than use only Pareto points: the Pareto set of a
small sweep has a handful of points, each picked partly by noise, so per-parameter lines
through it swing wildly (our trials picked learning rates 6x too high). Every run whose loss is
within a few percent of the frontier carries information about good settings at its compute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import erfinv

from carbs.scaling import laws
from carbs.space import Param


def transform(p: Param | None, v: np.ndarray) -> np.ndarray:
    """The coordinate a law is linear in: log for positive scale-like values, logit for fractions."""
    v = np.asarray(v, float)
    if p is not None and p.kind == "logit":
        v = np.clip(v, 1e-9, 1 - 1e-9)
        return np.log(v / (1 - v))
    return np.log(np.maximum(v, 1e-300))


def inverse(p: Param | None, z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, float)
    if p is not None and p.kind == "logit":
        return 1.0 / (1.0 + np.exp(-z))
    return np.exp(z)


def nearness_weights(rel_excess: np.ndarray, tau: float) -> np.ndarray:
    """Weight of a run by how far its log-loss sits above the frontier (0 above ~2 tau)."""
    r = np.maximum(rel_excess, 0.0)
    return np.exp(-0.5 * (r / tau) ** 2)


@dataclass
class HPLaw:
    """z(value) = c0 + c1 (log C - x0) per bootstrap row; z is `transform(param, value)`."""

    name: str
    coef: np.ndarray  # [B+1, 2]
    x0: float
    resid_sd: float
    param: Param | None
    value_sd: float = math.inf  # weighted sd of the runs' z: ~0 when the runs never varied it

    def z_at(self, cost: float) -> np.ndarray:
        return self.coef[:, 0] + self.coef[:, 1] * (math.log(cost) - self.x0)

    def value_at(self, cost: float) -> np.ndarray:
        return inverse(self.param, self.z_at(cost))

    def summary(self, target: float) -> dict[str, Any]:
        z = self.z_at(target)
        boot = z[1:] if len(z) > 1 else z
        lo, hi = np.quantile(boot, [0.05, 0.95])
        c = self.coef[1:] if len(self.coef) > 1 else self.coef
        return {
            "law": f"{'logit' if self.param is not None and self.param.kind == 'logit' else 'log'}"
            f"({self.name}) = c0 + c1 (log C - {self.x0:.4f})",
            "c0": float(self.coef[0, 0]),
            "c1": float(self.coef[0, 1]),
            "c1_ci90": [float(v) for v in np.quantile(c[:, 1], [0.05, 0.95])],
            "c0_ci90": [float(v) for v in np.quantile(c[:, 0], [0.05, 0.95])],
            "resid_sd": float(self.resid_sd),
            "at_target": float(inverse(self.param, z[0])),
            "at_target_ci90": [float(inverse(self.param, lo)), float(inverse(self.param, hi))],
            "at_target_sd_log": float(np.std(boot)),
        }


RUN_CORRELATION = 3.0  # an optimizer's runs are serially correlated: inflate the bootstrap sd
UNEXPLORED_SD = 0.1  # runs whose values spread less than this (log units) never tried others


def shrunk_law_z(law: HPLaw, target: float, prior: tuple[float, float]) -> tuple[np.ndarray, float]:
    """(rows of z at `target`, point slope): the law's slope combined with `prior` by precision.

    The intercept stays where the runs put it (at the law's centre x0); only the extrapolation
    rate is shrunk, by the weight s^2 / (s^2 + sd^2), sd the bootstrap sd of the slope inflated
    by RUN_CORRELATION; runs that all used nearly the same value (spread below UNEXPLORED_SD)
    say nothing about its trend, however tight their bootstrap, and the prior decides."""
    m, s = prior
    a = law.coef[:, 1]
    sd = (float(np.std(a[1:])) if len(a) > 2 else 1.0) * RUN_CORRELATION
    if law.value_sd < UNEXPLORED_SD:
        # the prior alone, its spread carried into the bootstrap rows by evenly spaced quantiles
        q = np.sqrt(2.0) * erfinv(np.linspace(-1.0, 1.0, len(a) + 2)[1:-1])
        rows = m + s * np.concatenate([[0.0], q[1:]]) if len(a) > 1 else np.array([m])
        return law.coef[:, 0] + rows * (math.log(target) - law.x0), m
    w = s * s / (s * s + sd * sd)
    a_post = w * a + (1.0 - w) * m
    return law.coef[:, 0] + a_post * (math.log(target) - law.x0), float(a_post[0])


def fit_hp_law(
    name: str,
    param: Param | None,
    costs: np.ndarray,
    values: np.ndarray,
    W: np.ndarray,
    x0: float,
    prior_strength: float = 0.5,
) -> HPLaw:
    """Weighted Huber power law for every bootstrap row of weights W [B+1, n]."""
    z = transform(param, values)
    # fit in z directly: laws.fit_power_law takes logs, so pass exp(z)
    coef, _ = laws.fit_power_law(costs, np.exp(z), W, x0=x0, prior_strength=prior_strength)
    r = z - (coef[0, 0] + coef[0, 1] * (np.log(costs) - x0))
    w0 = W[0] / max(W[0].sum(), 1e-12)
    sd = float(np.sqrt(np.sum(w0 * r * r)))
    spread = float(np.sqrt(np.sum(w0 * (z - np.sum(w0 * z)) ** 2)))
    return HPLaw(name, coef, x0, sd, param, spread)


@dataclass
class FailureModel:
    """P(fail) = sigmoid((z - delta) / s), z = log lr - lr_law(log C): the divergence cliff
    sits `delta` above the learning-rate law. `observed` is False when no run failed, in which
    case delta is only a lower bound (the highest offset that survived)."""

    delta: float
    s: float
    observed: bool
    n_failed: int
    max_ok_offset: float

    def p_fail(self, z: float) -> float:
        return float(1.0 / (1.0 + math.exp(-(z - self.delta) / self.s)))

    def safe_offset(self, p: float = 0.05) -> float:
        """Largest offset above the lr law with P(fail) <= p."""
        return self.delta + self.s * math.log(p / (1 - p))

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": "P(fail) = sigmoid((log lr - lr_law(C) - delta) / s)",
            "delta": self.delta,
            "s": self.s,
            "cliff_observed": self.observed,
            "n_failed": self.n_failed,
            "max_surviving_offset": self.max_ok_offset,
            "safe_offset_p05": self.safe_offset(),
        }


def fit_failure(z_ok: np.ndarray, z_fail: np.ndarray, s: float = 0.15) -> FailureModel:
    """1-D maximum likelihood for the cliff offset with a fixed softness `s` (log units).

    With few failures a free slope is unidentifiable; a fixed softness keeps the fit stable.
    """
    max_ok = float(np.max(z_ok)) if len(z_ok) else 0.0
    if len(z_fail) == 0:
        return FailureModel(max_ok + 2 * s, s, False, 0, max_ok)
    grid = np.linspace(
        min(z_ok.min(initial=0), z_fail.min()) - 1, max(z_ok.max(initial=0), z_fail.max()) + 1, 801
    )

    def nll(d: np.ndarray) -> np.ndarray:
        lf = -np.logaddexp(0, -(z_fail[None, :] - d[:, None]) / s).sum(1)
        lo = -np.logaddexp(0, (z_ok[None, :] - d[:, None]) / s).sum(1)
        return -(lf + lo)

    d = float(grid[np.argmin(nll(grid))])
    return FailureModel(d, s, True, int(len(z_fail)), max_ok)
