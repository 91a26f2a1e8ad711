"""The fitted laws: frontier loss vs compute, Chinchilla L(N, D), and power laws vs compute.

Every law is fitted by Huber loss in log space (robust to the odd bad run), from a grid of
starts evaluated in one vectorised pass, then refined; bootstrap replicates are rows of
multiplicity weights refitted all at once by `huber.batched_fit`.
"""

from __future__ import annotations

import itertools
import math
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


def linear_resid(x: np.ndarray, y: np.ndarray) -> hb.ResidFn:
    """Residuals of y = c0 + c1 x (a power law in log space)."""

    def f(th: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r = y - (th[:, :1] + th[:, 1:2] * x)
        J = np.stack([-np.ones_like(r), -np.broadcast_to(x, r.shape)], axis=-1)
        return r, J

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
    th, _ = hb.batched_fit(resid, starts, counts, delta, lo, hi, iters=150, tol=1e-10)
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
    th, fv = hb.batched_fit(resid, starts, np.ones((len(starts), len(y))), delta, CH_LO, CH_HI)
    order = np.argsort(fv)
    best, best_f = th[order[0]], fv[order[0]]
    for i in order[:3]:
        t, v = hb.polish(resid, th[i], delta)
        if v < best_f:
            best, best_f = t, v
    boot = None if counts is None else _boot_fit(resid, best, counts, delta, CH_LO, CH_HI)
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


EXP_PLAUSIBLE = (0.05, 1.0)  # published alpha, beta lie in 0.07-0.7; outside, a fit is a ridge
E_COLLAPSED = 0.05  # E below this share of the lowest observed loss: the fit traded E away
TERM_VANISHED = 1e-3  # a size or data term below this share of the lowest loss adds nothing


def chinchilla_implausible(
    theta: np.ndarray, min_loss: float, n_typ: float | None = None, d_typ: float | None = None
) -> str | None:
    """Why a fit is degenerate for extrapolation, or None.

    Why: over a narrow or optimizer-shaped set of runs, L(N, D) has a ridge where E, the
    exponents and the coefficients trade off at nearly equal fit; its ends (E ~ 0 with a
    small exponent, or an exponent past 1 with a huge coefficient) fit the runs but predict a
    run 100x away 5-19 % off (scaling world, CARBS trials). A size or data term that adds
    nothing at the runs' typical N or D (`n_typ`, `d_typ`) leaves its exponent unidentified
    (seen on a real CPU sweep of 1-2-layer models: A ~ 0)."""
    a, b, e, al, be = (float(v) for v in np.asarray(theta)[:5])
    lo, hi = EXP_PLAUSIBLE
    if math.exp(e) < E_COLLAPSED * min_loss:
        return f"E = {math.exp(e):.3g} collapsed toward 0 (lowest loss {min_loss:.3g})"
    for name, coef, ex, typ in (("size", a, al, n_typ), ("data", b, be, d_typ)):
        if typ is not None and coef - ex * math.log(typ) < math.log(TERM_VANISHED * min_loss):
            return f"the {name} term vanished at the runs' scale (exponent unidentified)"
    for name, v in (("alpha", al), ("beta", be)):
        if not lo <= v <= hi:
            return f"{name} = {v:.3g} outside the plausible {lo}-{hi}"
    return None


def chinchilla_predict(theta: np.ndarray, n: np.ndarray, d: np.ndarray) -> np.ndarray:
    th = np.atleast_2d(theta)
    a, b, e, al, be = (th[:, i : i + 1] for i in range(5))
    return np.exp(e) + np.exp(a - al * np.log(n)) + np.exp(b - be * np.log(d))


def chinchilla_n_opt(theta: np.ndarray, flops: np.ndarray) -> np.ndarray:
    """Compute-optimal N for C = 6 N D under the fitted law (rows of theta broadcast).

    A degenerate bootstrap row (beta at 0, exponents at their bounds) gives inf or nan, which
    callers treat as "not determined" rather than as a warning on stderr."""
    th = np.atleast_2d(theta)
    a, b, _, al, be = (th[:, i : i + 1] for i in range(5))
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        g = ((al * np.exp(a)) / (be * np.exp(b))) ** (1.0 / (al + be))
        return g * (np.asarray(flops) / 6.0) ** (be / (al + be))


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
    th, fv = hb.batched_fit(resid, starts, np.repeat(w, len(starts), 0), delta, FR_LO, FR_HI)
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


def frontier_readable(theta: np.ndarray, x0: float) -> dict[str, float]:
    a, e, al = (float(v) for v in theta)
    return {"E": float(np.exp(e)), "A": float(np.exp(a + al * x0)), "alpha": al}


# ---- power laws of a hyperparameter vs compute --------------------------------------------
def fit_power_law(
    costs: np.ndarray,
    values: np.ndarray,
    weights: np.ndarray,
    *,
    x0: float,
    delta: float = 0.15,
    slope_prior: float = 0.0,
    prior_strength: float = 0.0,
) -> tuple[np.ndarray, float]:
    """log v = c0 + c1 (log C - x0), weighted Huber; weights [B, n] fit B laws at once.

    `prior_strength` adds a pseudo-observation pulling the slope toward `slope_prior`: with
    few points a wild slope extrapolated 100x is worse than a flat law.
    """
    x = np.log(costs) - x0
    y = np.log(values)
    W = np.atleast_2d(weights)
    if prior_strength > 0:  # slope prior as two pseudo-points at x = +-1 around the weighted mean
        B = len(W)
        ybar = np.sum(W * y, 1) / np.maximum(W.sum(1), 1e-12)
        xbar = np.sum(W * x, 1) / np.maximum(W.sum(1), 1e-12)
        xs = np.stack([xbar - 1, xbar + 1], 1)
        ys = np.stack([ybar - slope_prior, ybar + slope_prior], 1)
        Wp = np.full((B, 2), prior_strength)
        return _fit_lin_rows(
            np.concatenate([np.broadcast_to(x, (B, len(x))), xs], 1),
            np.concatenate([np.broadcast_to(y, (B, len(y))), ys], 1),
            np.concatenate([W, Wp], 1),
            delta,
        )
    return _fit_lin_rows(np.broadcast_to(x, W.shape), np.broadcast_to(y, W.shape), W, delta)


def _fit_lin_rows(
    x: np.ndarray, y: np.ndarray, W: np.ndarray, delta: float
) -> tuple[np.ndarray, float]:
    """Row-wise weighted Huber line fits by IRLS (exact for a line; converges in ~20 steps)."""
    B = len(W)
    th = np.zeros((B, 2))
    for _ in range(60):
        r = y - th[:, :1] - th[:, 1:2] * x
        irls = np.where(np.abs(r) <= delta, 1.0, delta / np.maximum(np.abs(r), 1e-12))
        w = W * irls
        sw, sx, sy = w.sum(1), (w * x).sum(1), (w * y).sum(1)
        sxx, sxy = (w * x * x).sum(1), (w * x * y).sum(1)
        det = sw * sxx - sx * sx
        ok = det > 1e-12 * np.maximum(sw * sxx, 1e-300)
        c1 = np.where(ok, (sw * sxy - sx * sy) / np.where(ok, det, 1), 0.0)
        c0 = (sy - c1 * sx) / np.maximum(sw, 1e-12)
        new = np.stack([c0, c1], 1)
        if np.max(np.abs(new - th)) < 1e-10:
            th = new
            break
        th = new
    r = y - th[:, :1] - th[:, 1:2] * x
    obj = float(np.sum(W[0] * hb.huber(r[0], delta)))
    return th, obj
