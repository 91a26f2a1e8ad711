"""What each setting's optimum follows: log N, log tokens, log compute, log d_model, another setting.

Why chosen by backtest and not fixed: in one problem the best learning rate follows width and
batch size and the best batch follows tokens; in another both follow size. Near the frontier
all these scale variables move together, so the runs alone cannot say which one an optimum
follows from a fit on all of them; what can is extrapolation: fit on the cheaper runs and
score the loss of the costlier ones, which sit further out along the direction the large run
goes. A setting leaves the default (log N) only when another choice predicts the held-out
runs clearly better.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from carbs.scaling import laws
from carbs.scaling.response import DEFAULT_COV, MOE_VAR, ResponseFit, fit_response

SCALE_VARS = ("log N", "log D", "log C", "log d_model")
EXPERT_NAMES = ("n_experts", "num_experts", "moe_num_experts", "num_local_experts")
TOP_K_NAMES = ("top_k", "moe_top_k", "num_experts_per_tok", "experts_per_token")
TRAIN_SHARE = 2.0 / 3.0
MARGIN = 0.05  # a new choice must cut the held-out squared error by this share
MIN_TEST = 4
BT_ITERS = 120


def scale_vars(
    n_eff: float, tokens: float, cost: float, params: Mapping[str, Any]
) -> dict[str, float]:
    """The scale variables of one run (or of the large run)."""
    out = {"log N": math.log(n_eff), "log D": math.log(tokens), "log C": math.log(cost)}
    if params.get("d_model"):
        out["log d_model"] = math.log(float(params["d_model"]))
    experts = next((params[k] for k in EXPERT_NAMES if params.get(k)), None)
    if experts is not None:
        top_k = next((params[k] for k in TOP_K_NAMES if params.get(k)), 1)
        out[MOE_VAR] = math.log(max(float(experts) / float(top_k), 1.0))
    return out


def cheap_costly_split(costs: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Indices of the cheaper 2/3 of runs (to fit) and the costlier rest (to score), or None
    when too few are left to score: both backtests here extrapolate along cost."""
    order = np.argsort(costs)
    n_tr = int(math.ceil(TRAIN_SHARE * len(costs)))
    if len(costs) - n_tr < MIN_TEST:
        return None
    return order[:n_tr], order[n_tr:]


def setting_var(name: str) -> str:
    return f"z {name}"


def held_out_error(resp: ResponseFit, n: np.ndarray, d: np.ndarray, y: np.ndarray,
                   Z: np.ndarray, cov: Mapping[str, np.ndarray]) -> float:  # fmt: skip
    """Mean squared log error of row 0 of `resp` on runs (n, d, Z, cov), y = log loss."""
    pred = np.array([math.log(float(resp.predict(
        math.exp(n[i]), math.exp(d[i]), {nm: float(Z[i, j]) for j, nm in enumerate(resp.hp_names)},
        {k: float(v[i]) for k, v in cov.items()})[0])) for i in range(len(n))])  # fmt: skip
    return float(np.mean((pred - y) ** 2))


def choose_follows(
    n_eff: np.ndarray,
    tokens: np.ndarray,
    loss: np.ndarray,
    costs: np.ndarray,
    Z: np.ndarray,
    names: Sequence[str],
    cov: Mapping[str, np.ndarray],
    near: np.ndarray,
    chin_start: np.ndarray,
    n_select: int = 1,
    pairs: bool = False,
) -> tuple[list[list[str]], dict[str, Any]]:
    """Greedy per setting: the scale variable (then optionally a second: another setting's z)
    whose fit on the cheaper runs best predicts the costlier runs' losses.

    Only the first `n_select` settings (the learning rate, whose penalty is steep enough for
    the losses to locate its optimum) are selected; the rest keep log N. Measured on the
    scaling world: selecting for every setting, or pairs, overfits the 1/3 held out (the
    batch and warmup penalties are within the noise) and made picks worse."""
    J = len(names)
    follows: list[list[str]] = [[DEFAULT_COV] for _ in range(J)]
    report: dict[str, Any] = {"split": "fit on the cheaper 2/3 by cost, scored on the rest"}
    split = cheap_costly_split(costs)
    if J == 0 or split is None:
        report["skipped"] = "too few runs for a backtest; every optimum follows log N"
        return follows, report
    tr, te = split
    y = np.log(loss)
    nn, dd = np.log(n_eff), np.log(tokens)

    def score(fl: list[list[str]]) -> float:
        r = fit_response(n_eff[tr], tokens[tr], loss[tr], Z[tr], list(names),
                         np.ones((1, len(tr))), near[tr], chin_start,
                         {k: v[tr] for k, v in cov.items()}, fl, iters=BT_ITERS)  # fmt: skip
        return held_out_error(r, nn[te], dd[te], y[te], Z[te], {k: v[te] for k, v in cov.items()})

    best = score(follows)
    report["default_error"] = best
    singles = [v for v in SCALE_VARS if v in cov]
    for j in range(min(J, n_select)):
        trials: list[tuple[float, list[str]]] = []
        for v in singles:
            if v != follows[j][0]:
                fl = [list(f) for f in follows]
                fl[j] = [v]
                trials.append((score(fl), [v]))
        cand = min(trials, default=(math.inf, follows[j]))
        if cand[0] < best * (1 - MARGIN):
            best, follows[j] = cand[0], cand[1]
        # a second variable: another setting this one is tuned jointly with (lr with batch)
        leaders = [names[i] for i in range(J) if i != j
                   and not any(c.startswith("z ") for c in follows[i])]  # fmt: skip
        if any(setting_var(names[j]) in f for f in follows):
            leaders = []  # another setting follows this one: no cycles
        for other in leaders if pairs else []:
            var = setting_var(other)
            if var not in cov:
                continue
            fl = [list(f) for f in follows]
            fl[j] = follows[j] + [var]
            s = score(fl)
            if s < best * (1 - MARGIN):
                best, follows = s, fl
    report["error"] = best
    report["follows"] = {nm: follows[j] for j, nm in enumerate(names)}
    return follows, report


def predictor_errors(
    n_eff: np.ndarray,
    tokens: np.ndarray,
    loss: np.ndarray,
    costs: np.ndarray,
    Z: np.ndarray,
    names: Sequence[str],
    cov: Mapping[str, np.ndarray],
    near: np.ndarray,
    chin_start: np.ndarray,
    follows: Sequence[Sequence[str]],
) -> dict[str, float] | None:
    """Held-out error (mean |log|) of the joint model and of Chinchilla on the Pareto set.

    Both are fitted on the cheaper 2/3 of runs and scored on the Pareto-optimal runs of the
    costlier 1/3 (the frontier is what the large run's loss lies on): the joint model at their
    settings, Chinchilla at their (N, D). None with too few runs."""
    from carbs.pareto import pareto_mask

    split = cheap_costly_split(costs)
    if split is None:
        return None
    tr, te = split
    te = te[pareto_mask(costs[te], loss[te])]
    tr_p = tr[pareto_mask(costs[tr], loss[tr])]
    if len(te) == 0 or len(tr_p) < 5:
        return None
    y = np.log(loss[te])
    joint = fit_response(n_eff[tr], tokens[tr], loss[tr], Z[tr], list(names),
                         np.ones((1, len(tr))), near[tr], chin_start,
                         {k: v[tr] for k, v in cov.items()}, follows, iters=BT_ITERS)  # fmt: skip
    e_joint = math.sqrt(held_out_error(joint, np.log(n_eff[te]), np.log(tokens[te]), y, Z[te],
                                       {k: v[te] for k, v in cov.items()}))  # fmt: skip
    ch = laws.fit_chinchilla(n_eff[tr_p], tokens[tr_p], loss[tr_p], counts=None, n_starts=8)
    p = np.log(laws.chinchilla_predict(ch.theta[None], n_eff[te], tokens[te])[0])
    e_chin = float(np.sqrt(np.mean((p - y) ** 2)))
    return {"joint": e_joint, "pareto_chinchilla": e_chin, "n_scored": float(len(te))}
