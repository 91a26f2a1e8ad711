"""Settings that do not scale cost (learning rate, batch size, warmup, ...) at the large run.

Why conditioned on size: the learning-rate optimum is set by the model's size (and batch by
its data), so each setting is read off the joint response model at the picked N, not
extrapolated on its own against compute. The learning rate then takes the conservative side:
below the optimum by the share of its bootstrap spread that minimises the expected lopsided
penalty (a rate too low costs a little, one too high costs more and can diverge), and never
inside the fitted divergence boundary; with no divergence ever seen it stays at or below the
optimum.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from carbs.scaling.consistency import valid_value
from carbs.scaling.divergence import Cliff, fit_cliff
from carbs.scaling.hplaws import HPLaw, shrunk_law_z, transform
from carbs.scaling.response import ResponseFit
from carbs.space import SearchSpace

# How far below its optimum the lr is picked, in bootstrap sds: the shift that minimises the
# expected lopsided penalty (curvature r times steeper above the optimum) under the optimum's
# uncertainty; 0.27 sd at r = 2, 0.44 at 3. r is the joint model's fitted ratio, at least
# LR_RATIO_FLOOR: runs near the optimum rarely show the steep side, which is there (and past it,
# divergence). A fixed 0.5 sd (r ~ 3.2) cost regret on the scaling world: CARBS' trials 2.07 %
# vs 1.95 % with 0.27, space-filling 0.93 vs 0.86 %.
LR_RATIO_FLOOR = 2.0
# Growth of shallow settings with compute (slope of log value vs log C): the runs' own trend is
# combined with a prior by precision. Batch grows with compute in every published fit
# (DeepSeek LLM: B_opt ~ C^0.33; the critical batch grows with data); other settings have no
# agreed trend. Why a prior: these settings barely move the loss, so where an optimizer's runs
# put them drifts with its search path, and a drift extrapolated 100x picked batches 0.07-0.57x
# the optimum on the scaling world.
BATCH_SLOPE_PRIOR = (0.25, 0.1)
OTHER_SLOPE_PRIOR = (0.0, 0.1)
MAX_SD = 1.5  # an optimum whose bootstrap sd (log units) exceeds this is not identified
P_FAIL = 0.05


def lr_cliff(
    resp: ResponseFit,
    lr_key: str,
    space: SearchSpace,
    ok_params: Sequence[dict[str, Any]],
    ok_cov: Mapping[str, np.ndarray],
    fail_params: Sequence[dict[str, Any]],
    fail_cov: Mapping[str, np.ndarray],
) -> Cliff:
    """Fit the divergence boundary on offsets from the scale-conditioned lr optimum, vs log N."""
    p = space.param(lr_key)

    def offsets(ps: Sequence[dict[str, Any]], cov: Mapping[str, np.ndarray]) -> np.ndarray:
        if not ps:
            return np.zeros(0)
        z = transform(p, np.array([float(q[lr_key]) for q in ps]))
        opt = np.array([float(resp.optimum_z(lr_key, {k: v[i] for k, v in cov.items()})[0])
                        for i in range(len(ps))])  # fmt: skip
        return z - opt

    fn = np.asarray(fail_cov.get("log N", np.zeros(0)), float)
    return fit_cliff(offsets(ok_params, ok_cov), np.asarray(ok_cov["log N"]),
                     offsets(fail_params, fail_cov), fn)  # fmt: skip


def choose_settings(
    cfg: dict[str, Any],
    space: SearchSpace,
    resp: ResponseFit | None,
    hp: dict[str, HPLaw],
    n_pick: float,
    target: float,
    lr_key: str | None,
    cliff: Cliff | None,
    warnings: list[str],
    cov_at: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Set each response-model setting in `cfg` (in place); returns what was decided and why.

    `cov_at` holds the large run's scale variables (log N, log D, ...); a setting whose optimum
    follows another setting is decided after it, at its picked value."""
    info: dict[str, Any] = {}
    cov = dict(cov_at or {})
    cov.setdefault("log N", math.log(n_pick))
    names = space_settings(resp, space) if resp is not None else []
    if resp is not None:
        names.sort(key=lambda s: any(c.startswith("z ") for c in resp.covariates(s)))
    if lr_key is not None and lr_key not in names and lr_key in hp:
        names.append(lr_key)
    for name in names:
        p = space.param(name)
        if resp is not None and name in resp.hp_names:
            z = resp.optimum_z(name, cov)
            source = "joint response model, following " + ", ".join(resp.covariates(name))
        else:
            z = hp[name].z_at(target)
            source = "law vs compute (no joint model)"
        sd = float(np.std(z[1:])) if len(z) > 2 else 0.5
        z0 = float(z[0])
        entry: dict[str, Any] = {"optimum": _inv(p, z0), "sd_log": sd, "source": source}
        if sd > MAX_SD and name in hp:
            z0 = float(hp[name].z_at(target)[0])
            sd = float(np.std(hp[name].z_at(target)[1:])) if len(hp[name].coef) > 2 else 0.5
            entry["source"] = "law vs compute (joint optimum not identified)"
            warnings.append(
                f"{name}: its optimum is not identified by the runs (bootstrap sd "
                f"{entry['sd_log']:.2f} in log); fell back to its law vs compute"
            )
        if name != lr_key and name in hp:
            # settings with shallow penalties (batch, warmup): the losses barely locate their
            # optimum, so where the near-frontier runs put them is the better evidence, and how
            # fast it moves with compute leans on the prior unless the runs pin it
            zl, slope = shrunk_law_z(hp[name], target, slope_prior(name))
            z0, sd = float(zl[0]), (float(np.std(zl[1:])) if len(zl) > 2 else 0.5)
            entry["source"] = (
                "law vs compute on near-frontier runs (shallow penalty), slope "
                f"{slope:.3f} per log C after the prior"
            )
        elif name in hp and entry["source"].startswith("joint"):
            # reported only: the setting's own law vs compute on near-frontier runs is the naive
            # estimate, blind to width and batch. Combined by inverse variance it pulled the
            # lr 0.4-0.9 e-fold low at the pick on CARBS' trials of the scaling world (regret
            # 2.07 % without it, 2.17 % with it; space-filling 0.93 vs 1.03 %)
            entry["law_vs_compute"] = _inv(p, float(hp[name].z_at(target)[0]))
        entry["centre"] = _inv(p, z0)
        z_pick = z0
        if name == lr_key:
            ratio = 1.0  # the fitted curvature above / below the optimum, where fitted
            if resp is not None and name in resp.hp_names:
                ratio = float(np.exp(resp.asymmetry(name)[0]))
            z_pick, reasons = _conservative_lr(z0, sd, cliff, math.log(n_pick), warnings, ratio)
            entry["reason"] = "; ".join(reasons)
            if cliff is not None:
                entry["p_fail_at_pick"] = cliff.p_fail(z_pick - z0, math.log(n_pick))
        cfg[name] = valid_value(p, _inv(p, z_pick))
        cov[f"z {name}"] = float(transform(p, np.array(float(cfg[name]))))
        entry["picked"] = cfg[name]
        info[name] = entry
    return info


def space_settings(resp: ResponseFit, space: SearchSpace) -> list[str]:
    """The joint model's settings that are parameters of the space: its derived ones (the
    shape's aspect) are set by the shape, not here, and have no value in a run's params."""
    return [s for s in resp.hp_names if s in space.names]


def slope_prior(name: str) -> tuple[float, float]:
    """(mean, sd) of the prior on d log(value) / d log C for a shallow setting."""
    return BATCH_SLOPE_PRIOR if "batch" in name.lower() else OTHER_SLOPE_PRIOR


def lopsided_shift(ratio: float) -> float:
    """The shift below a Gaussian-uncertain optimum (in sds) that minimises the expected
    penalty x^2 (times `ratio` where x > 0), x the picked value's offset from the optimum."""
    x, w = np.polynomial.hermite_e.hermegauss(40)
    w = w / w.sum()
    shifts = np.linspace(0.0, 2.0, 401)
    off = -shifts[:, None] - x[None, :]
    cost = (w * off * off * np.where(off > 0, ratio, 1.0)).sum(1)
    return float(shifts[int(np.argmin(cost))])


def _conservative_lr(
    z0: float, sd: float, cliff: Cliff | None, log_n: float, warnings: list[str],
    ratio: float = 1.0,
) -> tuple[float, list[str]]:  # fmt: skip
    ratio = max(ratio, LR_RATIO_FLOOR)
    shift = lopsided_shift(ratio)
    z = z0 - shift * sd
    reasons = [f"optimum minus {shift:.2f} bootstrap sd ({sd:.3f} in log), the expected-penalty "
               f"minimum for curvature {ratio:.2f}x steeper above"]  # fmt: skip
    if cliff is not None:
        cap = cliff.safe_offset(log_n, P_FAIL)
        if z > z0 + cap:
            z = z0 + cap
            reasons.append(
                f"capped {P_FAIL:.0%} below the divergence boundary"
                if cliff.observed
                else "capped at the optimum (no divergence observed)"
            )
    if not (cliff and cliff.observed):
        warnings.append(
            "no run diverged, so the divergence boundary is unobserved: the learning "
            "rate stays at or below its size-conditioned optimum"
        )
    if sd > math.log(2.0) / 1.645:
        warnings.append(
            "learning-rate optimum is uncertain at the target (90 % interval wider "
            "than 2x either way); picked the conservative side"
        )
    return z, reasons


def _inv(p: Any, z: float) -> float:
    if p.kind == "logit":
        return 1.0 / (1.0 + math.exp(-z))
    return math.exp(z)
