"""The fitted laws: frontier loss vs compute L(C), and Chinchilla L(N, D) (approach 3).

Every law is fitted by Huber loss in log space (robust to the odd bad run), from a grid of
starts evaluated in one vectorised pass, then refined; bootstrap replicates are rows of
multiplicity weights refitted all at once by `huber.batched_fit`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from carbs.scaling import huber as hb

CHINCHILLA_NAMES = ("a", "b", "e", "alpha", "beta")


def _lse(terms: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """log-sum-exp of broadcastable arrays and the softmax weights of each term."""
    m = terms[0]
    for t in terms[1:]:
        m = np.maximum(m, t)
    ex = [np.exp(t - m) for t in terms]
    s = sum(ex)
    return m + np.log(s), [e / s for e in ex]


def chinchilla_resid(xn: np.ndarray, xd: np.ndarray, y: np.ndarray) -> hb.ResidFn:
    """Residuals of log L = LSE(a - alpha log N, b - beta log D, e), theta = (a,b,e,alpha,beta)."""

    def f(th: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a, b, e, al, be = (th[:, i : i + 1] for i in range(5))
        pred, (s1, s2, s3) = _lse([a - al * xn, b - be * xd, np.broadcast_to(e, (len(th), len(y)))])
        J = np.stack([-s1, -s2, -s3, s1 * xn, s2 * xd], axis=-1)
        return y - pred, J

    return f


def frontier_resid(xc: np.ndarray, y: np.ndarray) -> hb.ResidFn:
    """Residuals of log L = LSE(a - alpha xc, e): L = E + A C^-alpha with xc = log C - log C0."""

    def f(th: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a, e, al = (th[:, i : i + 1] for i in range(3))
        pred, (s1, s2) = _lse([a - al * xc, np.broadcast_to(e, (len(th), len(y)))])
        return y - pred, np.stack([-s1, -s2, s1 * xc], axis=-1)

    return f


@dataclass
class FitResult:
    """A fitted law: point estimate, bootstrap replicates and percentile intervals."""

    law: str
    names: tuple[str, ...]
    theta: np.ndarray
    objective: float
    n_points: int
    boot: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def ci(self, level: float = 0.9) -> dict[str, tuple[float, float]]:
        if self.boot is None or len(self.boot) < 2:
            return {n: (float("nan"), float("nan")) for n in self.names}
        q = (1 - level) / 2
        lo, hi = np.nanquantile(self.boot, [q, 1 - q], axis=0)
        return {n: (float(lo[i]), float(hi[i])) for i, n in enumerate(self.names)}

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "law": self.law,
            "params": {n: float(v) for n, v in zip(self.names, self.theta, strict=True)},
            "ci90": {n: list(v) for n, v in self.ci().items()},
            "objective": float(self.objective),
            "n_points": int(self.n_points),
            "n_bootstrap": 0 if self.boot is None else int(len(self.boot)),
        }
        d.update(self.extra)
        return d


def _boot_fit(
    resid: hb.ResidFn,
    theta: np.ndarray,
    counts: np.ndarray,
    delta: float,
    lo: np.ndarray,
    hi: np.ndarray,
) -> np.ndarray:
    starts = np.repeat(theta[None, :], len(counts), axis=0)
    th, _ = hb.batched_fit(resid, starts, counts, delta, (lo, hi), iters=150)
    return th


# ---- Chinchilla approach 3 --------------------------------------------------------------
CH_LO = np.array([-20.0, -20.0, -5.0, 0.0, 0.0])
CH_HI = np.array([60.0, 60.0, 5.0, 3.0, 3.0])


def epoch_grid() -> np.ndarray:
    """Besiroglu et al.'s 4,500-start grid over (a, b, e, alpha, beta)."""
    g = itertools.product(
        np.arange(0, 30, 5),
        np.arange(0, 30, 5),
        np.arange(-1, 1.5, 0.5),
        np.arange(0, 2.5, 0.5),
        np.arange(0, 2.5, 0.5),
    )
    return np.array(list(g), dtype=float)


def fit_chinchilla(
    n_params: np.ndarray,
    tokens: np.ndarray,
    loss: np.ndarray,
    *,
    delta: float = 1e-3,
    counts: np.ndarray | None = None,
    n_starts: int = 32,
) -> FitResult:
    """Chinchilla approach 3: L = E + A/N^alpha + B/D^beta by Huber on log loss.

    The full 4,500-start grid is scored in one pass, the best `n_starts` are refined together
    by batched LM, and the best is polished by BFGS (gtol 1e-10). `counts` [B, n]: bootstrap
    replicates refitted from the point estimate.
    """
    xn, xd, y = np.log(n_params), np.log(tokens), np.log(loss)
    resid = chinchilla_resid(xn, xd, y)
    grid = epoch_grid()
    ones = np.ones((1, len(y)))
    with np.errstate(all="ignore"):
        f0 = np.concatenate(
            [hb.objective(resid, chunk, ones, delta) for chunk in np.array_split(grid, 10)]
        )
    f0 = np.where(np.isfinite(f0), f0, np.inf)
    starts = grid[np.argsort(f0)[:n_starts]]
    th, fv = hb.batched_fit(resid, starts, np.ones((len(starts), len(y))), delta, (CH_LO, CH_HI))
    order = np.argsort(fv)
    best, best_f = th[order[0]], fv[order[0]]
    for i in order[:3]:
        t, v = hb.polish(resid, th[i], delta)
        if v < best_f:
            best, best_f = t, v
    boot = None if counts is None else _boot_fit(resid, best, counts, delta, (CH_LO, CH_HI))
    return FitResult(
        "chinchilla: L = exp(e) + exp(a)/N^alpha + exp(b)/D^beta",
        CHINCHILLA_NAMES,
        best,
        float(best_f),
        len(y),
        boot,
    )


def chinchilla_readable(theta: np.ndarray) -> dict[str, float]:
    """E, A, B, alpha, beta from the log-parametrised fit. A degenerate fit over a narrow size
    range can put log A past 709: A is then inf (stored as null, "not determined"), quietly."""
    a, b, e, al, be = (float(v) for v in theta)
    with np.errstate(over="ignore"):
        return {
            "E": float(np.exp(e)),
            "A": float(np.exp(a)),
            "B": float(np.exp(b)),
            "alpha": al,
            "beta": be,
        }


def chinchilla_predict(theta: np.ndarray, n: np.ndarray, d: np.ndarray) -> np.ndarray:
    th = np.atleast_2d(theta)
    a, b, e, al, be = (th[:, i : i + 1] for i in range(5))
    return np.exp(e) + np.exp(a - al * np.log(n)) + np.exp(b - be * np.log(d))


# ---- frontier L(C) ----------------------------------------------------------------------
FR_LO = np.array([-30.0, -5.0, 0.0])
FR_HI = np.array([30.0, 5.0, 2.0])


def fit_frontier(
    costs: np.ndarray,
    loss: np.ndarray,
    *,
    x0: float,
    delta: float = 1e-3,
    weights: np.ndarray | None = None,
) -> FitResult:
    """L(C) = E + A (C/C0)^-alpha, C0 = exp(x0), by Huber on log loss from a grid of starts."""
    xc, y = np.log(costs) - x0, np.log(loss)
    resid = frontier_resid(xc, y)
    ymin = float(np.min(y))
    grid = np.array(
        list(
            itertools.product(
                np.linspace(ymin - 3, ymin + 1, 9),
                np.linspace(-3, ymin, 7) if ymin > -3 else [ymin - 1],
                [0.02, 0.05, 0.1, 0.2, 0.35, 0.6, 1.0],
            )
        )
    )
    w = np.ones((1, len(y))) if weights is None else np.asarray(weights, float)[None, :]
    with np.errstate(all="ignore"):
        f0 = hb.objective(resid, grid, w, delta)
    starts = grid[np.argsort(np.where(np.isfinite(f0), f0, np.inf))[:24]]
    th, fv = hb.batched_fit(resid, starts, np.repeat(w, len(starts), 0), delta, (FR_LO, FR_HI))
    i = int(np.argmin(fv))
    return FitResult(
        "frontier: L(C) = exp(e) + exp(a) (C/C0)^-alpha",
        ("a", "e", "alpha"),
        th[i],
        float(fv[i]),
        len(y),
        None,
        {"log_C0": x0},
    )


def frontier_predict(theta: np.ndarray, costs: np.ndarray, x0: float) -> np.ndarray:
    th = np.atleast_2d(theta)
    xc = np.log(np.asarray(costs, float)) - x0
    return np.exp(th[:, 1:2]) + np.exp(th[:, :1] - th[:, 2:3] * xc)
