"""What a fitted loss model says is best: each setting's optimum at a size and data, and the
compute-optimal split of a budget between parameters and tokens.

Why from the model, not from laws per parameter: each setting's optimum is read at the large
run's own size, tokens and other settings (whatever the model found it to follow), and the
size is the minimum of the modelled loss along the budget, so the pick and the predicted loss
come from one object. Optima outside a setting's searched range are clamped unless the policy
allows extrapolation: past the range the runs show nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from carbs.scaling.evidence import SettingAxis
from carbs.scaling.lossmodel import LossFit

GRID_HALF_WIDTH = 9.0  # e-folds of N searched either side of the runs' mean size
GRID_POINTS = 721
EXPECTED_HALF_WIDTH = 2.5  # e-folds of N either side of row 0's optimum for the Bayes size
EXPECTED_POINTS = 201  # 2.5 % steps in N


@dataclass(frozen=True)
class SettingOptimum:
    """One setting's optimum: in the model's coordinate z and as a value, with its spread."""

    name: str
    z: float
    sd: float
    value: float
    clamped: bool
    follows: tuple[str, ...]


@dataclass(frozen=True)
class Allocation:
    """The compute-optimal size and tokens at a budget, and the loss there (rows: bootstrap)."""

    compute: float
    size: float  # where the replicates expect the lowest loss (`expected_loss_size`)
    tokens: float
    overhead: float  # C / (6 N D) the split was solved at
    size_rows: np.ndarray  # each row's own optimum
    log_loss_rows: np.ndarray  # each row's loss at its own optimum
    note: str | None = None  # why the size was changed from the model's (see largerun.supported)
    size_source: str = "law"  # "law", "weighed" with the runs' sizes, or the "runs'" alone
    size_sd_log: float | None = None  # where the size is not the law's: its own uncertainty

    def size_interval(self, level: float = 0.9) -> tuple[float, float]:
        """The size's interval: the replicates' optima, or where the size was weighed with the
        runs' (or taken from them) its own log-normal one, not the law's it replaced."""
        q = (1 - level) / 2
        if self.size_sd_log is not None:
            z = NormalDist().inv_cdf(1 - q) * self.size_sd_log
            return self.size * math.exp(-z), self.size * math.exp(z)
        rows = self.size_rows[1:] if len(self.size_rows) > 2 else self.size_rows
        lo, hi = np.quantile(rows, [q, 1 - q])
        return float(lo), float(hi)


def allocate(
    fit: LossFit, compute: float, overhead: float, sparsity: float | None, centre_log_n: float
) -> Allocation:
    """Minimise the modelled loss over N at C = 6 r N D (settings at their optima), per row."""
    n = centre_log_n + np.linspace(-GRID_HALF_WIDTH, GRID_HALF_WIDTH, GRID_POINTS)
    d = math.log(compute / (6.0 * overhead)) - n
    log_r = _log_reducible_grid(fit, n, d, sparsity)
    i = np.argmin(log_r, axis=1)
    n_rows = _refine(fit, n, i, compute, overhead, sparsity)
    total = math.log(compute / (6.0 * overhead))
    d_rows = total - n_rows
    log_loss = np.logaddexp(fit.theta[:, fit.layout.e], fit.log_reducible(n_rows, d_rows, sparsity))
    size = expected_loss_size(fit, float(n_rows[0]), total, sparsity)
    return Allocation(
        compute,
        float(math.exp(size)),
        float(math.exp(total - size)),
        overhead,
        np.exp(n_rows),
        log_loss,
    )


def expected_loss_size(fit: LossFit, log_n: float, total: float, sparsity: float | None) -> float:
    """log N minimising the bootstrap replicates' mean loss along the budget (log N + log D =
    `total`), near row 0's optimum `log_n`: the Bayes choice where the optimum is uncertain.
    Why not row 0's argmin: the loss rises unequally either side of the optimum and the
    replicates disagree on where it is; on the world family's sweep-runner trials (24 worlds,
    100x) the mean regret went 1.40 -> 1.36 % (11 worlds better, 4 worse). Without replicates,
    row 0's optimum."""
    if fit.theta.shape[0] < 3:
        return log_n
    n = log_n + np.linspace(-EXPECTED_HALF_WIDTH, EXPECTED_HALF_WIDTH, EXPECTED_POINTS)
    log_r = _log_reducible_grid(fit, n, total - n, sparsity)
    loss = np.exp(np.logaddexp(fit.theta[1:, fit.layout.e][:, None], log_r[1:]))
    return float(n[int(np.argmin(loss.mean(axis=0)))])


def _refine(
    fit: LossFit,
    grid: np.ndarray,
    i: np.ndarray,
    compute: float,
    overhead: float,
    sparsity: float | None,
) -> np.ndarray:
    """Golden-section refinement of each row's grid minimum (the loss is unimodal along C)."""
    step = grid[1] - grid[0]
    lo = grid[np.clip(i - 1, 0, len(grid) - 1)]
    hi = grid[np.clip(i + 1, 0, len(grid) - 1)]
    lo, hi = np.minimum(lo, hi - step), np.maximum(hi, lo + step)
    g = (math.sqrt(5) - 1) / 2
    total = math.log(compute / (6.0 * overhead))
    for _ in range(40):
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
        fa = fit.log_reducible(a, total - a, sparsity)
        fb = fit.log_reducible(b, total - b, sparsity)
        left = fa < fb
        hi = np.where(left, b, hi)
        lo = np.where(left, lo, a)
    return 0.5 * (lo + hi)


def _log_reducible_grid(
    fit: LossFit, n: np.ndarray, d: np.ndarray, sparsity: float | None
) -> np.ndarray:
    """log R [rows, grid] at the points (n[k], d[k])."""
    rows = fit.chinchilla_rows(sparsity)
    x1 = rows[:, :1] - rows[:, 3:4] * n[None, :]
    x2 = rows[:, 1:2] - rows[:, 4:5] * d[None, :]
    if fit.layout.log_g is None:
        return np.logaddexp(x1, x2)
    g = np.exp(fit.theta[:, fit.layout.log_g])[:, None]
    return g * np.logaddexp(x1 / g, x2 / g)


Elsewhere = Callable[[str, Mapping[str, float]], tuple[float, float, tuple[str, ...]] | None]


def setting_optima(
    fit: LossFit,
    axes: Mapping[str, SettingAxis],
    scale: Mapping[str, float],
    clamp: bool,
    elsewhere: Elsewhere | None = None,
    chosen: Mapping[str, float] | None = None,
) -> dict[str, SettingOptimum]:
    """Every setting of the model at its optimum for the scale variables `scale` (log N, log D,
    log C, log width, ...), in the model's order: a setting whose optimum follows another
    one's z reads it at that one's chosen value (`chosen`: z of settings picked off their
    optimum, e.g. the lr below its cliff; else the optimum). `elsewhere(name, cov)`: (z, sd,
    what it follows) of a setting whose optimum is not the fit's alone (located by the runs,
    or weighed with them), asked in the same order so it too may follow the ones before it."""
    cov = dict(scale)
    out: dict[str, SettingOptimum] = {}
    chosen = chosen or {}
    for term in fit.structure.settings:
        other = elsewhere(term.name, cov) if elsewhere else None
        if other is not None:
            z0, sd, follows = other
        else:
            z = fit.optimum_z(term.name, cov)
            z0, sd = expected_optimum(z, term.lopsided), replicate_sd(z)
            follows = term.follows
        out[term.name] = _optimum(term.name, z0, sd, axes.get(term.name), clamp, follows)
        cov[f"z {term.name}"] = chosen.get(term.name, out[term.name].z)
    return out


def replicate_sd(z: np.ndarray) -> float:
    """The bootstrap replicates' (rows 1..) spread; unknown without replicates."""
    return float(np.std(z[1:])) if len(z) > 2 else math.inf


def weigh_with_runs(z: np.ndarray, runs: tuple[float, float]) -> tuple[float, float]:
    """A setting's optimum from two estimates combined by precision: the fit's replicates
    (their mean and spread) and where the near-frontier runs set it (moved to the scale
    asked, `ScalingModel.runs_optimum`). A shallow penalty locates its optimum poorly (weight
    decay on world 111: replicates' sd 0.46 in log, the fit 2.3x above the truth at the runs'
    own scale, where the runs sat within their spread of it); a well-determined one keeps
    the fit's. The same rule as the size's (`largerun.supported`). Without replicates the
    fit's uncertainty is unknown, so nothing is weighed: the fit's optimum is kept."""
    if len(z) <= 2:
        return float(z[0]), math.inf
    return by_precision((float(np.mean(z[1:])), replicate_sd(z)), runs)


def by_precision(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    """Two estimates (mean, sd) of one quantity combined by their precisions: the shared rule
    of every place the fit's answer is weighed with the runs' (size, aspect, settings)."""
    wa, wb = max(a[1], 1e-9) ** -2, max(b[1], 1e-9) ** -2
    return (wa * a[0] + wb * b[0]) / (wa + wb), (wa + wb) ** -0.5


def expected_optimum(z: np.ndarray, lopsided: bool) -> float:
    """A setting's value from its optimum per row: the replicates' mean, the Bayes choice
    under a symmetric (quadratic) penalty whose optimum is uncertain, rather than row 0's. A
    lopsided setting (the lr) keeps row 0's: its own rule weighs the steep side
    (`lrpick.choose_lr`). On the world family's sweep-runner trials (24 worlds, 100x): mean
    regret 1.36 -> 1.28 %, median 1.06 -> 1.03 %, 11 worlds better, 1 worse (batch, weight
    decay and warmup parts 0.35 -> 0.25 % together)."""
    if lopsided or len(z) < 3:
        return float(z[0])
    return float(np.mean(z[1:]))


def _optimum(
    name: str,
    z0: float,
    sd: float,
    ax: SettingAxis | None,
    clamp: bool,
    follows: tuple[str, ...],
) -> SettingOptimum:
    """One optimum as a value, kept within the searched range where `clamp`."""
    clamped = False
    if ax is not None and clamp and not (ax.lo <= z0 <= ax.hi):
        z0, clamped = min(max(z0, ax.lo), ax.hi), True
    value = ax.from_z(z0) if ax is not None else z0
    return SettingOptimum(name, z0, sd, value, clamped, follows)
