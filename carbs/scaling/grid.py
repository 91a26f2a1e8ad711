"""Legal values of a large run's parameters, and the tokens that meet a compute budget.

Why its own module: the search range bounds what the small runs explored, not what a large run
may use, so a large run's values follow different rules (a cost-scaling parameter may grow past
its maximum; every value keeps its kind's domain and grid), and the budget is met by pricing
the config with the workload's own cost function.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from carbs.space import Param

CostFn = Callable[[dict[str, Any]], float]


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
