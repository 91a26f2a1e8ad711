"""The compute-optimal model size N at the target budget, guarded against degenerate fits.

Why a module of its own: the size is the pick's most consequential number (it sets the shape
and, through the budget, the tokens), and it blends three sources with different failure
modes: the joint model's Chinchilla part, the Pareto-set Chinchilla fit, and a literature prior
on how fast N_opt grows with compute.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from carbs.scaling import laws
from carbs.scaling.response import ResponseFit
from carbs.scaling.types import TrialPoint

SIZE_PRIOR = True  # N_opt's growth exponent shrunk toward SIZE_EXP_PRIOR by its bootstrap sd
SIZE_EXP_PRIOR = 0.5
SIZE_EXP_SD = 0.1
REF_SD_FLOOR = 0.05  # log sd: the fit's N_opt is not trusted to better than 5 %
# log sd: the near-frontier runs' sizes miss N_opt by more than their bootstrap spread says.
# Which runs an optimizer spends near the frontier is its own choice, not the loss's: on CARBS'
# trials of the scaling world their size law at the top compute was 0.55-3.6x the true N_opt
# (rms 0.68 in log), the joint fit's N_opt 0.75-1.6x (rms 0.24).
LAW_SD_FLOOR = 0.7


def size_at_target(
    resp: ResponseFit | None,
    chin: dict[str, Any] | None,
    target: float,
    warnings: list[str],
    max_cost: float | None = None,
    law_sd: float = 0.0,
    law_at_max: np.ndarray | None = None,
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
            if max_cost and SIZE_PRIOR:
                return size_prior(rows, target, max_cost, law_sd, law_at_max)
            return v
    if cands:
        warnings.append("Chinchilla fit too uncertain for the size; used the size law")
    return None


def sane_size(
    n_target: float | None,
    costs: np.ndarray,
    sizes: np.ndarray | None,
    target: float,
    max_cost: float | None,
    warnings: list[str],
) -> float | None:
    """Guard against a degenerate size fit (seen on a real 14-trial sweep: N_opt ~ 0.03).

    The runs themselves say roughly how big a compute-optimal model is at their own compute;
    whatever the fitted law says, the target's size must lie between those sizes grown with
    compute at the slow and fast ends of the published exponents (0.3 .. 0.75)."""
    if n_target is None or sizes is None or not max_cost or not len(costs):
        return n_target
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


def size_prior(
    rows: np.ndarray,
    target: float,
    max_cost: float,
    law_sd: float = 0.0,
    law_at_max: np.ndarray | None = None,
) -> float:
    """N_opt at the target with its growth exponent shrunk toward the literature's.

    Why: the runs fix N_opt near their own compute well, but how fast it grows,
    a = beta / (alpha + beta), is weakly determined by a sweep spanning a decade or so, and
    a 100x extrapolation multiplies its error by ~4.6 in log N. The data's exponent (bootstrap
    sd) is combined with a prior a ~ 0.5 +- 0.1 (Hoffmann et al. 2022 0.50, Besiroglu et al.
    2024 0.51, DeepSeek 2024 0.52; Kaplan et al.'s 0.73 traced to counting and tuning by Porian
    et al. 2024), so well-determined data win and thin data fall back on compute-optimal
    practice. The data's sd is at least `law_sd`, the bootstrap sd of the near-frontier runs'
    size trend.

    The start, N_opt at the runs' top compute, combines the fit's optimum with the sizes of
    the runs nearest the frontier there (`law_at_max`, bootstrap rows), weighted by their
    bootstrap spreads, the runs' floored at `LAW_SD_FLOOR`: a fit whose loss is flat in N can
    put its optimum 3x off the sizes that actually did best (seen on an optimizer's runs on the
    scaling world, before the joint model's penalties), but where the fit is determined the
    runs' sizes say more about where the optimizer looked than where the optimum is.
    """
    al, be = rows[:, 3], rows[:, 4]
    a = be / np.maximum(al + be, 1e-12)
    a_data = float(a[0])
    sd = float(np.std(a[1:])) if len(a) > 2 else 1.0
    sd = max(sd, law_sd, 1e-3)
    w = (1.0 / sd**2) / (1.0 / sd**2 + 1.0 / SIZE_EXP_SD**2)
    a_post = w * a_data + (1 - w) * SIZE_EXP_PRIOR
    n_ref = laws.chinchilla_n_opt(rows, np.array([max_cost]))[:, 0]
    log_ref = math.log(float(n_ref[0]))
    if law_at_max is not None and np.all(np.isfinite(law_at_max)) and np.all(law_at_max > 0):
        ok = np.isfinite(n_ref) & (n_ref > 0)
        sd_fit = float(np.std(np.log(n_ref[ok][1:]))) if ok.sum() > 2 else 1.0
        sd_law = float(np.std(np.log(law_at_max[1:]))) if len(law_at_max) > 2 else 1.0
        v_fit, v_law = max(sd_fit, REF_SD_FLOOR) ** 2, max(sd_law, LAW_SD_FLOOR) ** 2
        log_ref = (log_ref / v_fit + math.log(float(law_at_max[0])) / v_law) / (
            1.0 / v_fit + 1.0 / v_law
        )
    return math.exp(log_ref) * (target / max_cost) ** a_post


def run_sizes(
    points: Sequence[TrialPoint],
    costs: np.ndarray,
    tokens: np.ndarray,
    size_fn: Callable[[dict[str, Any]], float] | None,
) -> np.ndarray:
    """Each run's size N: `size_fn` of its config (a parameter count), else C / (6 D).

    Raises ValueError naming the run where `size_fn` gives no positive finite count."""
    if size_fn is None:
        return costs / (6.0 * tokens)
    out = np.empty(len(points))
    for i, p in enumerate(points):
        try:
            v = float(size_fn(dict(p.params)))
        except Exception as exc:  # noqa: BLE001 - re-raised with the run named
            raise ValueError(f"size_fn failed on run {i} ({p.params}): {exc}") from exc
        if not (math.isfinite(v) and v > 0):
            raise ValueError(
                f"size_fn gave {v!r} for run {i} ({p.params}): it must count the parameters "
                "(a positive number)"
            )
        out[i] = v
    return out


def overhead_ratio(
    costs: np.ndarray, tokens: np.ndarray | None, sizes: np.ndarray | None
) -> np.ndarray | None:
    """r = C / (6 N D) per run: FLOPs spent beyond 6 per parameter per token (1 when N is
    measured as C / 6D; above 1 with attention and an output head outside the count)."""
    if tokens is None or sizes is None:
        return None
    return costs / (6.0 * tokens * sizes)


def flops_size_fn(
    cost_fn: Callable[[dict[str, Any]], float], tok_key: str
) -> Callable[[dict[str, Any]], float]:
    """A config's size as FLOPs per token / 6: N when no parameter counter is given."""
    t_ref = 1e9

    def flops_size(c: dict[str, Any]) -> float:
        return cost_fn({**c, tok_key: t_ref}) / (6.0 * t_ref)

    return flops_size
