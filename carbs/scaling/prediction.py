"""A predicted loss with an interval that owns up to both kinds of uncertainty.

Why two parts: the bootstrap says how much the runs' noise moves the prediction if the model's
form is right; the backtest says how wrong the chosen form was on costlier runs it had not seen,
and that error grows with how far the prediction sits from what was fitted. The interval combines both in
log space (independent parts add in variance); where the backtest could not be run the interval
is the bootstrap's alone and a warning says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from carbs.pareto import pareto_mask
from carbs.scaling.selection import Selection

Z90 = 1.6449  # two-sided 90 %: mean +- 1.645 sd


@dataclass(frozen=True)
class Prediction:
    """A loss, its interval, and what the interval is made of (sds in log loss)."""

    loss: float
    interval: tuple[float, float]
    bootstrap_sd: float
    form_sd: float
    extrapolation: float  # ln(target compute / costliest run)
    warnings: tuple[str, ...] = field(default_factory=tuple)
    expected_regret: float = 0.0  # log loss added for optima known only within their spread

    def to_dict(self) -> dict[str, float | list[float] | list[str]]:
        return {
            "loss": self.loss,
            "interval90": list(self.interval),
            "bootstrap_sd_log": self.bootstrap_sd,
            "model_form_sd_log": self.form_sd,
            "log_extrapolation": self.extrapolation,
            "expected_regret_log": self.expected_regret,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class FormError:
    """The chosen structure's error beyond the runs' noise, as it grows with extrapolation:
    variance `base + slope * distance^2`, the distance being how far a prediction sits from
    the fitted runs in log cost, in units of their spread (`extrapolation_distance`)."""

    base: float
    slope: float

    def sd(self, distance: float) -> float:
        return math.sqrt(max(self.base + self.slope * distance * distance, 0.0))


def extrapolation_distance(at: np.ndarray | float, runs: np.ndarray) -> np.ndarray:
    """|log cost - the runs' mean log cost| / their sd: a fitted trend's leverage.

    Why this and not e-folds past the costliest run: a law's extrapolation error grows with
    the distance from the centre of what it was fitted on relative to the span it was fitted
    on (the (x - mean)^2 / Sxx of a regression's prediction variance). A backtest fold fits a
    narrower span than the full runs, so in e-folds its errors overstate the full fit's: on
    the world family's sweep-runner trials the e-fold intervals were 6x the median error
    wide and covered every world. The sd is floored at a quarter e-fold: runs at one cost
    show no spread to scale by."""
    lx = np.log(np.asarray(runs, dtype=float))
    spread = max(float(np.std(lx)), 0.25)
    return np.abs(np.log(np.atleast_1d(np.asarray(at, dtype=float))) - lx.mean()) / spread


def form_error(sel: Selection, cost: np.ndarray, loss: np.ndarray) -> FormError | None:
    """How wrong the chosen form is, from the held-out frontier runs of the backtest.

    The constant is a pooled non-negative regression of squared residuals on squared distance,
    less the training runs' noise; the growth is the median of the folds' own slopes, so one
    origin whose few cheap runs extrapolate badly does not set the width for all (seen: the
    40 % fold erring 5-10 % where the other three erred under 1 %). Only each test set's
    Pareto-optimal runs count: the prediction is of a well-tuned run, and far runs carry
    errors of settings the large run does not have. None without a backtest."""
    scored = next((s for s in sel.tried if s.structure == sel.structure), None)
    if scored is None or not sel.folds or not scored.residuals:
        return None
    r2, dist2, noise = [], [], []
    for resid, train_err, fold in zip(scored.residuals, scored.fit_errors, sel.folds, strict=True):
        front = pareto_mask(cost[fold.test], loss[fold.test])
        r2.append(resid[front] ** 2)
        dist2.append(extrapolation_distance(cost[fold.test][front], cost[fold.train]) ** 2)
        noise.append(train_err**2)
    y, x = np.concatenate(r2), np.concatenate(dist2)
    base = float(_nonneg_lstsq(np.stack([np.ones_like(x), x], 1), y)[0])
    slopes = [
        max(float(np.sum(xk * (yk - base)) / max(float(np.sum(xk * xk)), 1e-12)), 0.0)
        for yk, xk in zip(r2, dist2, strict=True)
        if len(xk)
    ]
    return FormError(max(base - float(np.mean(noise)), 0.0), float(np.median(slopes)))


def _nonneg_lstsq(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    from scipy.optimize import nnls

    return nnls(A, b)[0]


def predict(
    log_loss_rows: np.ndarray,
    form: FormError | None,
    extrapolation: float,
    distance: float | None = None,
) -> Prediction:
    """Point (row 0) and 90 % interval of a log-loss prediction `extrapolation` e-folds past
    the costliest run, `distance` from the runs (`extrapolation_distance`; default: the
    e-folds, for callers without the runs' costs)."""
    point = float(log_loss_rows[0])
    boot = log_loss_rows[1:] if len(log_loss_rows) > 2 else log_loss_rows
    sd_b = float(np.std(boot))
    warnings: list[str] = []
    if form is None:
        sd_f = 0.0
        warnings.append(
            "too few runs for a backtest: the interval is the bootstrap's only, and "
            "does not cover an error of the model's form"
        )
    else:
        sd_f = form.sd(max(extrapolation if distance is None else distance, 0.0))
    sd = math.sqrt(sd_b * sd_b + sd_f * sd_f)
    lo, hi = math.exp(point - Z90 * sd), math.exp(point + Z90 * sd)
    return Prediction(math.exp(point), (lo, hi), sd_b, sd_f, extrapolation, tuple(warnings))


def with_expected_regret(
    pred: Prediction, pick_rows: np.ndarray, optimum_rows: np.ndarray
) -> Prediction:
    """The prediction of a picked config raised by what not knowing the optimum costs.

    Why: the pick sits at the fitted model's optimum, so the model predicts the optimal loss
    there; the truth is off that optimum by however far the fitted optima are from the true
    ones (the optimizer's curse: a point prediction of one's own argmin is biased low). Each
    bootstrap replicate is a plausible truth: the mean of its loss at the pick less its own
    optimum (`optimum_rows`, same compute) estimates that regret; row 0's own share is already
    in the prediction. On the world family's sweep-runner trials (24 worlds, picks' true regret
    median 1.05 %, this estimate about half of it) the mean signed prediction error went
    -0.93 -> +0.05 %, the median |error| 2.50 -> 2.37 %, coverage 22 -> 23 of 24."""
    pick, best = np.asarray(pick_rows, float), np.asarray(optimum_rows, float)
    if len(pick) < 3 or pick.shape != best.shape:
        return pred
    gap = pick - best
    shift = max(float(np.mean(gap[1:])) - float(gap[0]), 0.0)
    if shift == 0.0:
        return pred
    lo, hi = pred.interval
    k = math.exp(shift)
    return replace(pred, loss=pred.loss * k, interval=(lo * k, hi * k), expected_regret=shift)
