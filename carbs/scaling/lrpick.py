"""The large run's learning rate: on the conservative side of its optimum, inside the fitted
divergence boundary.

Why not the optimum itself: the penalty is steeper above the optimum than below (and past a
point runs diverge), and the optimum at the target is uncertain; the expected penalty under that
uncertainty is smallest a little below it. Runs that diverged fix where the cliff is, relative to
each run's own optimum (`divergence.fit_cliff`); without any, the rate stays at or below the
optimum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from carbs.scaling.divergence import Cliff, fit_cliff
from carbs.scaling.evidence import Evidence
from carbs.scaling.lossmodel import LossFit
from carbs.scaling.optima import SettingOptimum
from carbs.scaling.policy import Policy


@dataclass(frozen=True)
class LrChoice:
    z: float
    value: float
    shift_sd: float
    p_fail: float | None
    reasons: tuple[str, ...]
    warnings: tuple[str, ...]


def run_optima(fit: LossFit, ev: Evidence, name: str, idx: np.ndarray) -> np.ndarray:
    """The lr optimum (z) of each run `idx` at that run's own scale variables."""
    scales = ev.scales()
    return np.array(
        [float(fit.optimum_z(name, {k: float(v[i]) for k, v in scales.items()})[0]) for i in idx]
    )


def fit_lr_cliff(fit: LossFit, ev: Evidence, name: str) -> Cliff:
    """The divergence boundary in (offset from the run's lr optimum, log N)."""
    ok, bad = np.flatnonzero(ev.ok), np.flatnonzero(ev.failed)
    z = ev.settings[name]
    u_ok = z[ok] - run_optima(fit, ev, name, ok)
    u_bad = z[bad] - run_optima(fit, ev, name, bad) if len(bad) else np.zeros(0)
    log_n = np.log(ev.size)
    return fit_cliff(u_ok, log_n[ok], u_bad, log_n[bad])


def lopsided_shift(ratio: float) -> float:
    """The shift below a Gaussian-uncertain optimum (in sds) that minimises the expected
    penalty x^2 (times `ratio` where x > 0), x the picked value's offset from the optimum."""
    x, w = np.polynomial.hermite_e.hermegauss(40)
    w = w / w.sum()
    shifts = np.linspace(0.0, 2.0, 401)
    off = -shifts[:, None] - x[None, :]
    cost = (w * off * off * np.where(off > 0, ratio, 1.0)).sum(1)
    return float(shifts[int(np.argmin(cost))])


def choose_lr(
    opt: SettingOptimum, ratio: float, cliff: Cliff | None, log_n: float, to_value, policy: Policy
) -> LrChoice:  # type: ignore[no-untyped-def]
    """The picked lr coordinate: optimum minus the lopsided shift, capped below the cliff."""
    ratio = max(ratio, policy.lr_ratio_floor)
    shift = lopsided_shift(ratio)
    z = opt.z - shift * opt.sd
    reasons = [
        f"optimum minus {shift:.2f} bootstrap sd ({opt.sd:.3f} in log), the expected-"
        f"penalty minimum for a curvature {ratio:.2f}x steeper above"
    ]
    warnings: list[str] = []
    p_fail = None
    if cliff is not None:
        cap = cliff.safe_offset(log_n, policy.p_fail)
        if z > opt.z + cap:
            z = opt.z + cap
            reasons.append(
                f"capped at {policy.p_fail:.0%} risk of divergence"
                if cliff.observed
                else "capped at the optimum (no divergence observed)"
            )
        p_fail = cliff.p_fail(z - opt.z, log_n)
        if not cliff.observed:
            warnings.append(
                "no run diverged, so the divergence boundary is unobserved: the "
                "learning rate stays at or below its optimum"
            )
    if opt.sd > math.log(2.0) / 1.645:
        warnings.append(
            "the learning-rate optimum is uncertain at the target (90 % interval "
            "wider than 2x either way); picked the conservative side"
        )
    return LrChoice(z, float(to_value(z)), shift, p_fail, tuple(reasons), tuple(warnings))
