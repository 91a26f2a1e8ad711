"""A joint response model: loss from size, data and the hyperparameters whose optima move with scale.

    log L = LSE(a - alpha n + P, b - beta d + P, e),
    P = sum_j k_j (z_j - c_j - sum_i m_ji (x_ji - x0_ji))^2

with n = log N, d = log D (tokens), z_j the log (or logit) of hyperparameter j (learning rate,
batch size, warmup, ..., and the shape's aspect log(width / depth), a derived setting the pick
adds when the runs vary it) and x_j1, x_j2, ... the scale variables its optimum follows (the
learning rate's: log d_model, log N and the batch size's z; the others': log N; see
`covariates.default_follows`). Why joint: fitting each hyperparameter against log cost on the Pareto set
extrapolates each on its own, and lets a run that is off in one setting (too few tokens for its
size) pull another setting's law. The penalty P scales the reducible part only (L = E + R e^P):
a badly tuned run learns slower, it does not raise the irreducible loss; with P added to the
whole log loss instead, a penalty measured at small scale (where R is most of L) was charged in
full at 100x (where E is); on CARBS' trials of the scaling world the joint model's own
prediction error was 3.20 % that way, 2.09 % this way. Here every successful run informs every term: a run's excess
loss is explained by how far each of its settings sits from that setting's scale-dependent
optimum, and the Chinchilla part is fitted on losses corrected for those penalties. Bootstrap
replicates are rows of multiplicity weights refitted together (`huber.batched_fit`).

Where the runs vary a mixture-of-experts' sparsity u = log(n_experts / top_k), N (active
parameters) alone misses both what routing buys and what it costs: the size term's level moves
with u (more experts are more effective parameters, saturating: Clark et al. 2022) and so does
the data term's (each expert sees fewer tokens: Ludziejewski et al. 2025's joint MoE law):

    a -> a + m1 (u - u0) + m2 (u - u0)^2,    b -> b + w (u - u0)

with weak priors at 0. On the scaling world, without these terms the joint model's prediction at
100x was 8.8 % off on one seed whose optimum is a 37-expert model; u is centred on the runs' mean
so `chin()` stays the law of a typical run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from carbs.scaling import huber as hb
from carbs.scaling import laws

DELTA = 0.02  # Huber threshold on log loss: quadratic for noise, linear for outliers
SLOPE_PRIOR_SD = 1.0  # slope of an optimum vs a scale variable, in z per e-fold
PRIOR_WEIGHT = 2.0  # pseudo-observations worth of each prior row
LK_LO, LK_HI = -12.0, 2.0
DEFAULT_COV = "log N"
MOE_VAR = "log experts per token"  # u = log(n_experts / top_k), a scale variable of each run
MOE_MIN_SPREAD = 0.05  # below this sd of u the runs cannot tell its effect apart
MOE_PRIOR_SD = np.array([0.5, 0.1, 0.2])  # m1, m2 (size term), w (data term), in log loss
# alpha, beta: a literature prior, 0.34 / 0.32 +- 0.1 (Hoffmann et al. 2022: 0.34 / 0.28; Besiroglu
# et al. 2024: 0.35 / 0.37; Muennighoff et al. 2023: 0.35 / 0.35), weighted as a Bayesian prior
# against runs with 1 % seed noise in log loss. Why: an optimizer's runs crowd the cheap end,
# and there the fit can trade E for a small exponent (E ~ 0 with beta ~ 0.1 on two of ten
# scaling-world seeds), which says more tokens always help and picks a model 4x too small.
EXP_PRIOR_MEAN = np.array([0.34, 0.32])
EXP_PRIOR_SD = 0.1
EXP_PRIOR_NOISE = 0.01
MOE_LO, MOE_HI = np.array([-2.0, -0.5, -1.0]), np.array([2.0, 0.5, 1.0])
# The learning rate's penalty is lopsided: too high costs more than too low by the same factor
# (and past a point diverges). A symmetric quadratic fitted to such runs centres on the shallow
# side: 0.26 e-fold low for runs +-1.5 e-folds around an optimum whose curvature is 3x steeper
# above (0.04-0.12 low fitted lopsided; tests/carbs/test_scaling_response.py). Its curvature
# above the optimum is k e^s, below k, with s under a weak prior at 0, bounded to e^+-2. On the
# scaling world (ratio 2.3) CARBS' trials sit too near the optimum to show it (fitted ratios
# 0.7-1.8) and the picks moved little: the bias there is in extrapolation, not at the runs.
LR_NAMES = ("learning_rate", "lr")
ASYMMETRIC = LR_NAMES
ASYM_PRIOR_SD = 1.0
ASYM_BOUND = 2.0


@dataclass
class ResponseFit:
    """Row 0 is the fit on the data as observed, rows 1.. bootstrap replicates."""

    theta: np.ndarray  # [B+1, 5 + sum_j (2 + K_j) + n lopsided + (3 sparsity terms)]
    hp_names: list[str]
    n0: float
    objective: float
    n_points: int
    cov_names: list[list[str]] = field(
        default_factory=list
    )  # per setting, what its optimum follows
    cov_x0: list[list[float]] = field(default_factory=list)
    moe_u: tuple[float, float, float] | None = None  # (u0, min, max) of the runs, when fitted
    asym: list[bool] = field(default_factory=list)  # per setting: lopsided curvature fitted

    def asymmetry(self, name: str) -> np.ndarray:
        """log(curvature above / curvature below) per row; 0 where not fitted."""
        cols = asym_columns([len(c) for c in self.cov_names], self.asym)
        col = cols.get(self.hp_names.index(name))
        return np.zeros(len(self.theta)) if col is None else self.theta[:, col]

    def penalty(self, name: str, z: float, cov: Mapping[str, float]) -> np.ndarray:
        """The setting's penalty P (log of the reducible part's factor) at z, per row."""
        u = z - self.optimum_z(name, cov)
        return self.curvature(name) * u * u * np.exp(self.asymmetry(name) * (u > 0))

    def chin(self) -> np.ndarray:
        """The Chinchilla part (a, b, e, alpha, beta) per row, at the runs' mean sparsity."""
        return self.theta[:, :5]

    def chin_at(self, cov: Mapping[str, float]) -> np.ndarray:
        """The Chinchilla part at the sparsity in `cov` (clamped to what the runs tried)."""
        th = self.theta[:, :5].copy()
        if self.moe_u is None:
            return th
        u0, lo, hi = self.moe_u
        u = min(max(float(cov.get(MOE_VAR, u0)), lo), hi) - u0
        m = self.theta[:, -3:]
        th[:, 0] += m[:, 0] * u + m[:, 1] * u * u
        th[:, 1] += m[:, 2] * u
        return th

    def _offset(self, j: int) -> int:
        return 5 + sum(2 + len(c) for c in self.cov_names[:j])

    def hp(self, name: str) -> np.ndarray:
        """[B+1, 2 + K]: (c, slopes..., log k) of hyperparameter `name`."""
        j = self.hp_names.index(name)
        o = self._offset(j)
        return self.theta[:, o : o + 2 + len(self.cov_names[j])]

    def covariates(self, name: str) -> list[str]:
        return list(self.cov_names[self.hp_names.index(name)])

    def optimum_z(self, name: str, cov: Mapping[str, float]) -> np.ndarray:
        """The optimal z of `name` at the scale variables `cov` (name -> value), per row."""
        j = self.hp_names.index(name)
        h = self.hp(name)
        out = h[:, 0].copy()
        for i, (cn, x0) in enumerate(zip(self.cov_names[j], self.cov_x0[j], strict=True)):
            if cn not in cov:
                raise KeyError(f"optimum of {name} follows {cn!r}; pass its value in cov")
            out = out + h[:, 1 + i] * (float(cov[cn]) - x0)
        return out

    def curvature(self, name: str) -> np.ndarray:
        return np.exp(self.hp(name)[:, -1])

    def predict(self, n_params: float, tokens: float, z: dict[str, float],
                cov: Mapping[str, float]) -> np.ndarray:  # fmt: skip
        """Loss per row at (N, D) with the given hyperparameter coordinates (missing = optimum)."""
        th = self.chin_at(cov)
        base = laws.chinchilla_predict(th, np.array([n_params]), np.array([tokens]))[:, 0]
        pen = np.zeros(len(self.theta))
        for name in self.hp_names:
            if name in z:
                pen += self.penalty(name, z[name], cov)
        floor = np.exp(th[:, 2])
        return floor + (base - floor) * np.exp(pen)

    def summary(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "model": "log L = LSE(a - alpha log N + P, b - beta log D + P, e), "
            "P = sum_j k_j (z_j - c_j - sum_i m_ji (x_ji - x0_ji))^2",
            "n0": self.n0,
            "objective": self.objective,
            "n_points": self.n_points,
            "chinchilla": laws.chinchilla_readable(self.theta[0, :5]),
            "hyperparameters": {},
        }
        if self.moe_u is not None:
            m = self.theta[0, -3:]
            d["sparsity"] = {
                "u": "log(n_experts / top_k), centred at the runs' mean",
                "u0": self.moe_u[0],
                "size_term_slope": float(m[0]),
                "size_term_curvature": float(m[1]),
                "data_term_slope": float(m[2]),
            }
        for j, name in enumerate(self.hp_names):
            h = self.hp(name)
            boot = h[1:] if len(h) > 1 else h
            d["hyperparameters"][name] = {
                "c": float(h[0, 0]),
                "follows": list(self.cov_names[j]),
                "slopes": [float(v) for v in h[0, 1:-1]],
                "slopes_ci90": [
                    [float(v) for v in np.quantile(boot[:, 1 + i], [0.05, 0.95])]
                    for i in range(len(self.cov_names[j]))
                ],  # fmt: skip
                "curvature": float(math.exp(h[0, -1])),
                "curvature_ratio_above_below": float(math.exp(self.asymmetry(name)[0])),
            }
        return d


def nested_start(fit: ResponseFit, c0: float, n_cov: int, lk: float) -> np.ndarray:
    """Row 0 of `fit` with one more (symmetric) setting appended: its level `c0`, zero slopes
    on its `n_cov` scale variables and log curvature `lk`, placed after the other settings'
    blocks and before the lopsided-curvature and sparsity columns."""
    th = fit.theta[0]
    end = 5 + sum(2 + len(c) for c in fit.cov_names)
    block = np.r_[c0, np.zeros(n_cov), lk]
    return np.concatenate([th[:end], block, th[end:]])


def asym_columns(n_cov: Sequence[int], asym: Sequence[bool]) -> dict[int, int]:
    """Setting index -> theta column of its log curvature ratio, for the lopsided settings:
    after every setting's (c, slopes, log k) block, before the sparsity terms."""
    first = 5 + sum(2 + k for k in n_cov)
    return {j: first + sum(asym[:j]) for j in range(len(n_cov)) if j < len(asym) and asym[j]}


def response_resid(n: np.ndarray, d: np.ndarray, y: np.ndarray, Z: np.ndarray,
                   X: Sequence[np.ndarray], prior_c: np.ndarray,
                   u_moe: np.ndarray | None = None,
                   asym: Sequence[bool] | None = None) -> hb.ResidFn:  # fmt: skip
    """Residuals (data rows, then prior rows on each optimum's level and slopes, on the two
    exponents, and on the sparsity terms when `u_moe`, the runs' centred log(n_experts /
    top_k), is given).

    `X[j]` is [n, K_j], the centred scale variables setting j's optimum follows."""
    J = Z.shape[1]
    ks = [x.shape[1] for x in X]
    offs = [5 + sum(2 + k for k in ks[:j]) for j in range(J)]
    asym = list(asym) if asym is not None else [False] * J
    a_cols = asym_columns(ks, asym)
    n_prior = sum(1 + k for k in ks) + len(a_cols) + (3 if u_moe is not None else 0) + 2
    w_prior = math.sqrt(PRIOR_WEIGHT)

    def f(th: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        B = len(th)
        a, b, e, al, be = (th[:, i : i + 1] for i in range(5))
        if u_moe is not None:
            m1, m2, w = (th[:, k : k + 1] for k in range(th.shape[1] - 3, th.shape[1]))
            a = a + m1 * u_moe + m2 * u_moe**2
            b = b + w * u_moe
        jac = np.zeros((B, len(y) + n_prior, th.shape[1]))
        pr = np.zeros((B, n_prior))
        # the settings' penalty P (in log) scales the reducible part: L = E + R exp(P)
        pen = np.zeros((B, len(y)))
        dpen: list[tuple[int, np.ndarray]] = []
        r_i = 0
        for j in range(J):
            o, K = offs[j], ks[j]
            c = th[:, o : o + 1]
            m = th[:, o + 1 : o + 1 + K]
            k = np.exp(th[:, o + 1 + K])[:, None]
            u = Z[None, :, j] - c - m @ X[j].T
            if j in a_cols:
                # curvature k e^s above the optimum, k below
                sa = th[:, a_cols[j] : a_cols[j] + 1]
                k = k * np.exp(sa * (u > 0))
                dpen.append((a_cols[j], -k * u * u * (u > 0)))
                pr[:, r_i] = w_prior * DELTA * sa[:, 0] / ASYM_PRIOR_SD
                jac[:, len(y) + r_i, a_cols[j]] = w_prior * DELTA / ASYM_PRIOR_SD
                r_i += 1
            pen = pen + k * u * u
            # d r / d theta = -(s1 + s2) d P / d theta, filled in once the weights are known
            dpen.append((o, 2 * k * u))
            for i in range(K):
                dpen.append((o + 1 + i, 2 * k * u * X[j][None, :, i]))
            dpen.append((o + 1 + K, -k * u * u))
            # priors: an optimum level near the best runs' settings, and modest slopes
            pr[:, r_i] = w_prior * DELTA * (c[:, 0] - prior_c[j]) / 2.0
            jac[:, len(y) + r_i, o] = w_prior * DELTA / 2.0
            r_i += 1
            for i in range(K):
                pr[:, r_i] = w_prior * DELTA * m[:, i] / SLOPE_PRIOR_SD
                jac[:, len(y) + r_i, o + 1 + i] = w_prior * DELTA / SLOPE_PRIOR_SD
                r_i += 1
        pred, (s1, s2, s3) = laws._lse([a - al * n + pen, b - be * d + pen,
                                        np.broadcast_to(e, (B, len(y)))])  # fmt: skip
        jac[:, : len(y), :5] = np.stack([-s1, -s2, -s3, s1 * n, s2 * d], axis=-1)
        if u_moe is not None:
            jac[:, : len(y), -3:] = np.stack([-s1 * u_moe, -s1 * u_moe**2, -s2 * u_moe], -1)
        for col, g in dpen:
            jac[:, : len(y), col] = (s1 + s2) * g
        for i in range(2):
            pr[:, r_i] = EXP_PRIOR_NOISE * (th[:, 3 + i] - EXP_PRIOR_MEAN[i]) / EXP_PRIOR_SD
            jac[:, len(y) + r_i, 3 + i] = EXP_PRIOR_NOISE / EXP_PRIOR_SD
            r_i += 1
        if u_moe is not None:
            for i in range(3):
                pr[:, r_i] = w_prior * DELTA * th[:, th.shape[1] - 3 + i] / MOE_PRIOR_SD[i]
                jac[:, len(y) + r_i, th.shape[1] - 3 + i] = w_prior * DELTA / MOE_PRIOR_SD[i]
                r_i += 1
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
    cov: Mapping[str, np.ndarray] | None = None,
    follows: Sequence[Sequence[str]] | None = None,
    iters: int = 300,
    nested: ResponseFit | None = None,
) -> ResponseFit:
    """Fit the joint model on all successful runs; `counts` [B+1, n] (row 0 all ones).

    `near` weights runs by nearness to the frontier, used only to start each optimum at the
    settings of the best runs; `chin_start` is a Chinchilla fit to start the size terms from.
    `cov` maps scale-variable names to per-run values and `follows[j]` names those setting j's
    optimum shifts with (default: log N only). `nested`, a fit of the same runs without the
    last setting, also starts the fit from its solution (that setting's penalty ~0), so adding
    a setting never ends in a worse optimum than leaving it out.
    """
    n, d, y = np.log(n_params), np.log(tokens), np.log(loss)
    J = Z.shape[1]
    cov = dict(cov or {})
    cov.setdefault(DEFAULT_COV, n)
    follows = [list(f) for f in follows] if follows is not None else [[DEFAULT_COV]] * J
    x0 = [[float(np.mean(cov[c])) for c in f] for f in follows]
    X = [np.stack([cov[c] - m for c, m in zip(f, x0[j], strict=True)], 1).reshape(len(y), -1)
         for j, f in enumerate(follows)]  # fmt: skip
    wn = near / max(near.sum(), 1e-12)
    prior_c = (wn[:, None] * Z).sum(0) if J else np.zeros(0)
    u_raw = cov.get(MOE_VAR)
    moe_u = None
    if u_raw is not None and float(np.std(u_raw)) > MOE_MIN_SPREAD:
        moe_u = (float(np.mean(u_raw)), float(np.min(u_raw)), float(np.max(u_raw)))
    u = np.asarray(u_raw, float) - moe_u[0] if moe_u is not None else None
    asym = [nm in ASYMMETRIC for nm in hp_names]
    n_asym = sum(asym)
    resid = response_resid(n, d, y, Z, X, prior_c, u, asym)
    lo = np.concatenate([laws.CH_LO] + [[-50.0] + [-3.0] * len(f) + [LK_LO] for f in follows]
                        + [[-ASYM_BOUND] * n_asym]
                        + ([MOE_LO] if u is not None else []))  # fmt: skip
    hi = np.concatenate([laws.CH_HI] + [[50.0] + [3.0] * len(f) + [LK_HI] for f in follows]
                        + [[ASYM_BOUND] * n_asym]
                        + ([MOE_HI] if u is not None else []))  # fmt: skip
    starts = []
    for lk in (math.log(0.01), math.log(0.1)):
        for shift in (0.0, 0.3):
            s = [np.asarray(chin_start, float)]
            for j in range(J):
                s.append(np.array([prior_c[j] - shift] + [-0.2 * shift] * len(follows[j]) + [lk]))
            s.append(np.zeros(n_asym))
            if u is not None:
                s.append(np.zeros(3))
            starts.append(np.concatenate(s))
    if nested is not None:
        for lk in (LK_LO + 2.0, math.log(0.01)):
            starts.append(nested_start(nested, prior_c[-1], len(follows[-1]), lk))
    starts_arr = np.clip(np.array(starts), lo, hi)
    n_prior = sum(1 + len(f) for f in follows) + n_asym + (3 if u is not None else 0) + 2
    w_rows = np.ones((len(starts_arr), len(y) + n_prior))
    th, fv = hb.batched_fit(resid, starts_arr, w_rows, DELTA, lo, hi, iters=iters)
    best = th[int(np.argmin(fv))]
    if len(counts) > 1:
        w_boot = np.concatenate([counts, np.ones((len(counts), n_prior))], 1)
        boot, _ = hb.batched_fit(resid, np.repeat(best[None], len(counts), 0), w_boot, DELTA,
                                 lo, hi, iters=iters // 2)  # fmt: skip
    else:
        boot = best[None].copy()
    boot[0] = best
    return ResponseFit(boot, list(hp_names), float(np.mean(n)), float(np.min(fv)), len(y),
                       follows, x0, moe_u, asym)  # fmt: skip
