"""The large run's shape: width, depth, routing and the other cost-scaling parameters, sized so
the model has the compute-optimal parameter count.

Why a solver and not one law per parameter: parameters extrapolated each on its own give a
model whose size is not the size the loss model asks for. Here the routing (experts per token,
top-k) is set where the loss model puts it within the searched range, the aspect ratio (width /
depth) where the model's aspect optimum is (else where the near-frontier runs' trend with size
puts it), every other cost-scaling parameter follows the near-frontier runs' trend with size,
and then width and depth are scaled together until the size is the target.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from carbs.scaling.evidence import Evidence
from carbs.scaling.grid import valid_value
from carbs.space import Param, SearchSpace

SizeFn = Callable[[dict[str, Any]], float]
TREND_PRIOR_SD = 0.5  # slope of log value vs log N: weak shrinkage toward holding a value
ROUTING_ROLES = ("experts", "experts_per_token", "top_k")


@dataclass(frozen=True)
class ShapeTarget:
    """What the shape must reach: a size, an aspect (log width / depth; None: the runs'
    trend), the routing parameters' values, and whether routing stays in its searched range."""

    size: float
    aspect: float | None
    routing: Mapping[str, float]
    clamp_routing: bool = True


@dataclass(frozen=True)
class Growth:
    """Which parameters grow to reach the size (width and depth together, at an aspect)."""

    grow: tuple[str, ...]
    width: str | None
    depth: str | None
    aspect: float | None


@dataclass(frozen=True)
class Shape:
    """The picked cost-scaling parameters (tokens not yet set), the size they give, and notes."""

    params: dict[str, Any]
    size: float
    target_size: float
    aspect: float | None
    notes: tuple[str, ...] = field(default_factory=tuple)


def reference_run(ev: Evidence, weight: np.ndarray) -> dict[str, Any]:
    """The near-frontier run of the highest compute: where every parameter the pick does not
    set takes its value from."""
    ok = np.flatnonzero(ev.ok)
    top = ok[np.argsort(ev.cost[ok])[-max(3, len(ok) // 4) :]]
    best = top[int(np.argmax(weight[np.searchsorted(ok, top)]))]
    return dict(ev.params[int(best)])


def trend(ev: Evidence, weight: np.ndarray, name: str, log_n: float) -> float:
    """The value of `name` at size exp(log_n) from the near-frontier runs' log-linear trend in
    log N (weighted least squares, slope shrunk toward 0 with sd TREND_PRIOR_SD)."""
    ok = np.flatnonzero(ev.ok)
    v = np.log([float(ev.params[i][name]) for i in ok])
    return math.exp(log_trend(np.log(ev.size[ok]), v, weight, log_n)[0])


def solve_shape(
    ev: Evidence, weight: np.ndarray, space: SearchSpace, target: ShapeTarget, measure: SizeFn
) -> Shape:
    """Cost-scaling parameters for a model of `target.size` parameters (as `measure` counts).
    Raises ValueError when no parameter can grow."""
    roles = ev.roles
    cfg = reference_run(ev, weight)
    notes: list[str] = []
    target_size, aspect, routing = target.size, target.aspect, target.routing
    log_n = math.log(target_size)
    width, depth = roles.get("width"), roles.get("depth")
    scaling = [p for p in space.params if p.scales_cost and p.name != roles.tokens]
    for p in scaling:
        role = roles.role_of(p.name)
        if role in ROUTING_ROLES and p.name in routing:
            v = routing[p.name]
            cfg[p.name] = p.clamp(v) if target.clamp_routing else valid_value(p, v)
        elif role in ROUTING_ROLES:  # not modelled: where the best top runs had it
            cfg[p.name] = p.clamp(cfg[p.name]) if target.clamp_routing else cfg[p.name]
        elif p.name not in (width, depth):
            cfg[p.name] = valid_value(p, trend(ev, weight, p.name, log_n))
    grow = [n for n in (width, depth) if n is not None and n in space.names]
    if not grow:
        grow = [p.name for p in scaling if roles.role_of(p.name) not in ROUTING_ROLES]
    if not grow:
        raise ValueError(
            "no cost-scaling parameter can grow: mark width, depth or size with scales_cost"
        )
    if width in grow and depth in grow and aspect is None and ev.aspect is not None:
        aspect = math.log(trend_ratio(ev, weight, width, depth, log_n))
    cfg = _scale_to(cfg, space, Growth(tuple(grow), width, depth, aspect), target_size, measure)
    size = float(measure(cfg))
    if abs(math.log(size / target_size)) > 0.1:
        notes.append(
            f"the shape reaches {size:.3g} parameters, not the target {target_size:.3g}: "
            "the legal grid (or a bound) does not allow closer"
        )
    got = math.log(float(cfg[width]) / float(cfg[depth])) if width in cfg and depth in cfg else None
    return Shape(cfg, size, target_size, got, tuple(notes))


def trend_ratio(ev: Evidence, weight: np.ndarray, width: str, depth: str, log_n: float) -> float:
    """width / depth at size exp(log_n) from the runs' trend of the aspect ratio."""
    ok = np.flatnonzero(ev.ok)
    ratio = np.array([float(ev.params[i][width]) / float(ev.params[i][depth]) for i in ok])
    return math.exp(log_trend(np.log(ev.size[ok]), np.log(ratio), weight, log_n)[0])


def log_trend(x: np.ndarray, y: np.ndarray, weight: np.ndarray, at: float) -> tuple[float, float]:
    """(value at `at`, weighted residual sd) of y's weighted linear trend in x, the slope
    shrunk toward 0 with sd TREND_PRIOR_SD: where near-frontier runs sit, and how widely."""
    xm, ym = np.average(x, weights=weight), np.average(y, weights=weight)
    sxx = float(np.sum(weight * (x - xm) ** 2))
    sxy = float(np.sum(weight * (x - xm) * (y - ym)))
    resid_var = max(float(np.average((y - ym) ** 2, weights=weight)), 1e-4)
    slope = sxy / (sxx + resid_var / TREND_PRIOR_SD**2)
    resid = y - ym - slope * (x - xm)
    sd = math.sqrt(max(float(np.average(resid**2, weights=weight)), 1e-4))
    return float(ym + slope * (at - xm)), sd


def _scale_to(
    cfg: dict[str, Any], space: SearchSpace, g: Growth, target: float, measure: SizeFn
) -> dict[str, Any]:
    """Scale the growing parameters by one factor (width and depth at the aspect ratio) until
    the size is the target; then the best legal neighbours."""
    grow, width, depth, aspect = g.grow, g.width, g.depth, g.aspect
    base = {n: math.log(max(float(cfg[n]), 1e-9)) for n in grow}
    if aspect is not None and width in base and depth in base:
        mid = 0.5 * (base[width] + base[depth])
        base[width], base[depth] = mid + 0.5 * aspect, mid - 0.5 * aspect

    def at(t: float, legal: bool) -> dict[str, Any]:
        out = dict(cfg)
        for n in grow:
            v = math.exp(base[n] + t)
            out[n] = valid_value(space.param(n), v) if legal else v
        return out

    lo, hi = -30.0, 30.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if measure(at(mid, True)) < target:  # legal values: a cost function may refuse others
            lo = mid
        else:
            hi = mid
    t = 0.5 * (lo + hi)
    return _best_legal(at(t, False), space, g, target, _safe(measure))


def _safe(measure: SizeFn) -> SizeFn:
    """The size of a config, or inf where the workload refuses it (e.g. heads not dividing)."""

    def size(c: dict[str, Any]) -> float:
        try:
            return float(measure(c))
        except Exception:  # noqa: BLE001 - an illegal combination is simply not a candidate
            return math.inf

    return size


def _best_legal(
    cont: dict[str, Any], space: SearchSpace, g: Growth, target: float, measure: SizeFn
) -> dict[str, Any]:
    """Among the legal values around the continuous solution, the config closest in size to
    the target (and in aspect to the aspect target) that satisfies the space's constraints."""
    grow, width, depth, aspect = g.grow, g.width, g.depth, g.aspect
    options = [_neighbours(space.param(n), float(cont[n])) for n in grow]
    best: tuple[float, dict[str, Any]] | None = None
    for combo in _product(options):
        c = dict(cont)
        c.update(dict(zip(grow, combo, strict=True)))
        searched = {k: c[k] for k in space.names if k in c}
        if space.constraints and not space.is_feasible(searched):
            continue
        err = abs(math.log(measure(c) / target))
        if aspect is not None and width in c and depth in c:
            err += 0.25 * abs(math.log(float(c[width]) / float(c[depth])) - aspect)
        if best is None or err < best[0]:
            best = (err, c)
    if best is None:
        return {**cont, **{n: valid_value(space.param(n), float(cont[n])) for n in grow}}
    return best[1]


def _neighbours(p: Param, v: float) -> list[Any]:
    step = p.multiple_of or (1 if p.is_integer else None)
    if step is None:
        return [valid_value(p, v)]
    lo = math.floor(v / step) * step
    vals = {valid_value(p, x) for x in (lo - step, lo, lo + step, lo + 2 * step) if x > 0}
    return sorted(vals)


def _product(options: list[list[Any]]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = [()]
    for opts in options:
        out = [o + (v,) for o in out for v in opts]
    return out
