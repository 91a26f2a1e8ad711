"""The compute-optimal model size N at the target budget, guarded against degenerate fits.

Why a module of its own: the size is the pick's most consequential number (it sets the shape
and, through the budget, the tokens), and it blends three sources with different failure
modes: the joint model's Chinchilla part, the Pareto-set Chinchilla fit, and a literature prior
on how fast N_opt grows with compute.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from carbs.scaling import laws
from carbs.scaling.response import ResponseFit

SIZE_PRIOR = True  # N_opt's growth exponent shrunk toward SIZE_EXP_PRIOR by its bootstrap sd
SIZE_EXP_PRIOR = 0.5
SIZE_EXP_SD = 0.15


def size_at_target(
    resp: ResponseFit | None,
    chin: dict[str, Any] | None,
    target: float,
    warnings: list[str],
    max_cost: float | None = None,
    law_sd: float = 0.0,
) -> float | None:
    """N_opt at the target from the joint model (else the Pareto Chinchilla fit), if steady."""
    cands = []
    if resp is not None:
        cands.append(resp.chin())
    if chin and "_boot_pareto" in chin:
        cands.append(np.asarray(chin["_boot_pareto"]))
    for rows in cands:
        nopt = laws.chinchilla_n_opt(rows, np.array([target]))[:, 0]
        q = np.quantile(nopt[1:], [0.05, 0.95]) if len(nopt) > 2 else (nopt[0], nopt[0])
        v, lo, hi = float(nopt[0]), float(q[0]), float(q[1])
        if math.isfinite(v) and v > 0 and hi / max(lo, 1e-300) < 1e3:
            return size_prior(rows, target, max_cost, law_sd) if max_cost and SIZE_PRIOR else v
    if cands:
        warnings.append("Chinchilla fit too uncertain for the size; used the size law")
    return None


def sane_size(
    n_target: float | None,
    costs: np.ndarray,
    tokens: np.ndarray | None,
    target: float,
    max_cost: float | None,
    warnings: list[str],
) -> float | None:
    """Guard against a degenerate size fit (seen on a real 14-trial sweep: N_opt ~ 0.03).

    The runs themselves say roughly how big a compute-optimal model is at their own compute;
    whatever the fitted law says, the target's size must lie between those sizes grown with
    compute at the slow and fast ends of the published exponents (0.3 .. 0.75)."""
    if n_target is None or tokens is None or not max_cost or not len(costs):
        return n_target
    sizes = costs / (6.0 * tokens)
    ratio = target / max_cost
    lo, hi = float(np.min(sizes)) * ratio**0.3, float(np.max(sizes)) * ratio**0.75
    if math.isfinite(n_target) and lo <= n_target <= hi:
        return n_target
    clamped = min(max(n_target, lo), hi) if math.isfinite(n_target) else math.sqrt(lo * hi)
    warnings.append(
        f"the fitted compute-optimal size at the target ({n_target:.3g}) is outside what the runs "
        f"support ({lo:.3g}..{hi:.3g} from their sizes grown with compute); used {clamped:.3g}"
    )
    return clamped


def size_prior(rows: np.ndarray, target: float, max_cost: float, law_sd: float = 0.0) -> float:
    """N_opt at the target with its growth exponent shrunk toward the literature's.

    Why: the runs fix N_opt near their own compute well, but how fast it grows,
    a = beta / (alpha + beta), is weakly determined by a sweep spanning a decade or so, and
    a 100x extrapolation multiplies its error by ~4.6 in log N. The data's exponent (bootstrap
    sd) is combined with a prior a ~ 0.5 +- 0.15 (Hoffmann et al. ~0.5, Kaplan et al. ~0.73),
    so well-determined data win and thin data fall back on compute-optimal practice. The
    data's sd is at least `law_sd`, the bootstrap sd of the near-frontier runs' size trend.
    """
    al, be = rows[:, 3], rows[:, 4]
    a = be / np.maximum(al + be, 1e-12)
    a_data = float(a[0])
    sd = float(np.std(a[1:])) if len(a) > 2 else 1.0
    sd = max(sd, law_sd, 1e-3)
    w = (1.0 / sd**2) / (1.0 / sd**2 + 1.0 / SIZE_EXP_SD**2)
    a_post = w * a_data + (1 - w) * SIZE_EXP_PRIOR
    n_ref = float(laws.chinchilla_n_opt(rows[:1], np.array([max_cost]))[0, 0])
    return n_ref * (target / max_cost) ** a_post
