"""A predicted loss with an interval that owns up to both kinds of uncertainty.

Why two parts: the bootstrap says how much the runs' noise moves the prediction if the model's
form is right; the backtest says how wrong the chosen form was on costlier runs it had not seen,
and that error grows with how far the prediction extrapolates. The interval combines both in
log space (independent parts add in variance); where the backtest could not be run the interval
is the bootstrap's alone and a warning says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

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

    def to_dict(self) -> dict[str, float | list[float] | list[str]]:
        return {
            "loss": self.loss,
            "interval90": list(self.interval),
            "bootstrap_sd_log": self.bootstrap_sd,
            "model_form_sd_log": self.form_sd,
            "log_extrapolation": self.extrapolation,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class FormError:
    """The chosen structure's error beyond the runs' noise, as it grows with extrapolation:
    variance `base + slope * reach^2` (reach in e-folds of compute past the fitted runs)."""

    base: float
    slope: float

    def sd(self, reach: float) -> float:
        return math.sqrt(max(self.base + self.slope * reach * reach, 0.0))


def form_error(sel: Selection, cost: np.ndarray, loss: np.ndarray) -> FormError | None:
    """Regress the held-out frontier runs' squared residuals on their squared reach (both
    coefficients non-negative), and take the training runs' noise out of the constant: what
    remains is how wrong the form is, at the runs and per e-fold beyond them. Only each test
    set's Pareto-optimal runs count: the prediction is of a well-tuned run, and far runs carry
    errors of settings the large run does not have. None without a backtest."""
    scored = next((s for s in sel.tried if s.structure == sel.structure), None)
    if scored is None or not sel.folds or not scored.residuals:
        return None
    r2, reach2, w, noise = [], [], [], []
    for resid, train_err, fold in zip(scored.residuals, scored.fit_errors, sel.folds, strict=True):
        front = pareto_mask(cost[fold.test], loss[fold.test])
        r2.append(resid[front] ** 2)
        reach2.append(np.log(cost[fold.test][front] / cost[fold.train].max()) ** 2)
        w.append(np.ones(int(front.sum())))
        noise.append(train_err**2)
    y, x, wt = np.concatenate(r2), np.concatenate(reach2), np.concatenate(w) + 1e-12
    A = np.stack([np.ones_like(x), x], 1) * np.sqrt(wt)[:, None]
    coef = _nonneg_lstsq(A, y * np.sqrt(wt))
    return FormError(max(coef[0] - float(np.mean(noise)), 0.0), coef[1])


def _nonneg_lstsq(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    from scipy.optimize import nnls

    return nnls(A, b)[0]


def predict(log_loss_rows: np.ndarray, form: FormError | None, extrapolation: float) -> Prediction:
    """Point (row 0) and 90 % interval of a log-loss prediction `extrapolation` e-folds past
    the costliest run."""
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
        sd_f = form.sd(max(extrapolation, 0.0))
    sd = math.sqrt(sd_b * sd_b + sd_f * sd_f)
    lo, hi = math.exp(point - Z90 * sd), math.exp(point + Z90 * sd)
    return Prediction(math.exp(point), (lo, hi), sd_b, sd_f, extrapolation, tuple(warnings))
