"""Turn per-parameter law values at the target into one consistent, legal config.

Why: extrapolating each parameter on its own gives a shape whose size does not match the model
size the compute law asks for, and tokens that do not match the budget. Here the size law is
honoured exactly (shape determines N), the other shape laws are matched as closely as the
space's grid allows, constraints hold, and tokens are solved from the budget with `cost_fn`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from carbs.space import Param, SearchSpace

CostFn = Callable[[dict[str, Any]], float]
HW_MULTIPLE = {"d_model": 64, "expert_hidden": 64, "ffn_hidden": 64, "d_ff": 64}


def valid_value(p: Param, value: float) -> Any:
    """`value` made valid for the large run, which may leave the search range.

    Why: the search range bounds what small runs explored, not what a large run may use. A
    parameter that scales cost (d_model, n_layers, tokens, ...) must grow past its search max
    toward the target; only hard validity applies: integers, multiples, positivity and the
    lower bound (n_layers >= 1, n_experts >= 1). Other numeric parameters keep their kind's
    domain (a fraction stays in (0, 1), a log parameter positive) and their grid.
    """
    if p.kind == "categorical":
        return value
    v = float(value)
    if not p.scales_cost:
        if p.kind == "logit":
            v = min(max(v, 1e-9), 1 - 1e-9)
        elif p.kind == "log":
            v = max(v, 1e-300)
        return _on_grid(p, v, p.min if p.is_integer else None)
    lo = p.min if p.min is not None else (1.0 if p.is_integer else 0.0)
    return _on_grid(p, max(v, lo), lo)


def _on_grid(p: Param, v: float, lo: float | None) -> Any:
    if p.multiple_of:
        m = p.multiple_of
        r = round(v / m) * m
        if lo is not None and r < lo:
            r += m * math.ceil((lo - r) / m)
        return int(max(r, m))
    if p.is_integer:
        r = round(v)
        if lo is not None:
            r = max(r, math.ceil(lo))
        return int(r)
    return v


def in_range(p: Param, value: Any) -> bool:
    """Whether a value lies inside the parameter's search range."""
    if p.kind == "categorical":
        return value in p.choices
    v = float(value)
    return (p.min is None or v >= p.min - 1e-12 * abs(p.min)) and (
        p.max is None or v <= p.max + 1e-12 * abs(p.max)
    )


def legal_values(p: Param, centre: float, width: float = 1.2, n: int = 25) -> list[Any]:
    """Valid values of `p` within exp(+-width) of `centre`, on its grid and hardware multiples."""
    if p.kind == "categorical":
        return list(p.choices)
    vals = {valid_value(p, centre * math.exp(t)) for t in np.linspace(-width, width, n)}
    if p.is_integer:
        lo, hi = centre * math.exp(-width), centre * math.exp(width)
        step = p.multiple_of or 1
        if (hi - lo) / step < 60:
            grid = np.arange(math.floor(lo / step) * step, hi + step, step)
            vals |= {valid_value(p, v) for v in grid}
    mult = HW_MULTIPLE.get(p.name)
    if mult and not p.multiple_of:
        vals = {valid_value(p, round(v / mult) * mult) if v >= mult else v for v in vals}
    return sorted(vals)


def solve_tokens(
    cfg: dict[str, Any],
    cost_fn: CostFn,
    target: float,
    p_tokens: Param | None,
    token_key: str = "tokens",
) -> float:
    """Tokens with cost_fn(cfg) == target (bisection in log tokens; cost grows with tokens)."""
    lo, hi = math.log(1.0), math.log(1e18)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        c = cost_fn({**cfg, token_key: math.exp(mid)})
        if c < target:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    t = math.exp(0.5 * (lo + hi))
    if p_tokens is not None and p_tokens.is_integer:
        t = float(round(t))
    return t


def consistent_shape(
    space: SearchSpace,
    base: dict[str, Any],
    shape_targets: Mapping[str, tuple[float, float]],
    n_target: float,
    n_sd: float,
    size_fn: Callable[[dict[str, Any]], float],
    rounds: int = 4,
    in_range_only: frozenset[str] = frozenset(),
) -> tuple[dict[str, Any], float]:
    """Coordinate search over legal shape values minimising the law misfit.

    shape_targets: name -> (target value, sd in log units); the size term keeps
    log size_fn(cfg) within `n_sd` of log n_target. Infeasible configs (constraints) and
    values of `in_range_only` parameters outside their search range score inf.
    Returns (config, score).
    """
    names = list(shape_targets)
    cfg = dict(base)
    for n in names:
        cfg[n] = valid_value(space.param(n), shape_targets[n][0])

    def score(c: dict[str, Any]) -> float:
        searched = {k: c[k] for k in space.names if k in c}
        if not space.is_feasible(searched) or not shape_ok(c):
            return math.inf
        if any(not in_range(space.param(n), c[n]) for n in in_range_only):
            return math.inf
        s = 0.0
        for n in names:
            t, sd = shape_targets[n]
            s += ((math.log(max(float(c[n]), 1e-300)) - math.log(t)) / sd) ** 2
        try:
            size = size_fn(c)
        except Exception:  # noqa: BLE001 - a cost function rejecting a shape marks it infeasible
            return math.inf
        if not (size > 0):
            return math.inf
        return s + ((math.log(size) - math.log(n_target)) / n_sd) ** 2

    best = score(cfg)
    if not math.isfinite(best):  # repair: walk top-k style params down until feasible
        for n in names:
            for v in legal_values(space.param(n), shape_targets[n][0], width=3.0, n=41):
                c = {**cfg, n: v}
                sc = score(c)
                if sc < best:
                    cfg, best = c, sc
    for _ in range(rounds):
        improved = False
        for n in names:
            p = space.param(n)
            centre = float(cfg[n]) if p.kind != "categorical" else 0.0
            for v in legal_values(p, max(centre, 1e-12), width=1.5, n=31):
                if v == cfg[n]:
                    continue
                c = {**cfg, n: v}
                sc = score(c)
                if sc < best - 1e-12:
                    cfg, best, improved = c, sc, True
        for i, a in enumerate(names):  # pairwise moves trade one dimension against another
            for b in names[i + 1 :]:
                pa, pb = space.param(a), space.param(b)
                va = (
                    legal_values(pa, max(float(cfg[a]), 1e-12), 0.7, 11)
                    if pa.kind != "categorical"
                    else list(pa.choices)
                )
                vb = (
                    legal_values(pb, max(float(cfg[b]), 1e-12), 0.7, 11)
                    if pb.kind != "categorical"
                    else list(pb.choices)
                )
                for x in va:
                    for y in vb:
                        c = {**cfg, a: x, b: y}
                        sc = score(c)
                        if sc < best - 1e-12:
                            cfg, best, improved = c, sc, True
        if not improved:
            break
    return cfg, best


def shape_ok(c: Mapping[str, Any]) -> bool:
    """Architecture rules every DBRX-style config must meet, whether or not the space says so."""
    if "top_k" in c and "n_experts" in c and float(c["top_k"]) > float(c["n_experts"]):
        return False
    heads = c.get("n_heads")
    if heads and "d_model" in c and not c.get("head_dim"):
        if int(c["d_model"]) % int(heads):
            return False
        if (int(c["d_model"]) // int(heads)) % 2:
            return False
    if heads and c.get("n_kv_heads") and int(heads) % int(c["n_kv_heads"]):
        return False
    return True
