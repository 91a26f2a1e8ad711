"""Search spaces: parameters, their transforms to an unbounded "basic" space, and constraints.

Why: the optimizer works in a space where a step of 1 means the same thing for every parameter
(log for scale-like quantities, logit for fractions), exactly as CARBS does. Values the trainer
sees are always legal: integers rounded, multiples honoured, bounds clamped, constraints held.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from carbs.expressions import ExpressionError, evaluate, names_in, parse_expression

ParamKind = Literal["log", "linear", "logit", "int", "categorical"]


@dataclass(frozen=True)
class Param:
    """One searchable parameter.

    kind: log (positive, searched in log space), linear (searched with `scale` per unit),
    logit (a fraction in (0, 1)), int (linear integer), categorical (one of `choices`).
    `center` is the search centre (the prior's mode); `scales_cost` marks parameters whose
    growth buys compute, which the scaling-law stage fits against cost.

    `scale` divides the basic coordinate of every numeric kind (log and logit included), so a
    search step of 1 can be made to mean "one unit of scale" for any parameter; the default 1.0
    keeps natural log / logit / identity. `condition` is an optional boolean expression over other
    parameters (same grammar as `Constraint`, e.g. ``"n_experts > 1"``): when it is false the
    parameter is inactive, takes its centre value, and the optimizer does not search it.
    """

    name: str
    kind: ParamKind
    min: float | None = None
    max: float | None = None
    center: Any = None
    scale: float = 1.0
    integer: bool = False
    multiple_of: int | None = None
    choices: tuple[Any, ...] = ()
    scales_cost: bool = False
    condition: str | None = None

    def __post_init__(self) -> None:
        if self.kind == "categorical" and not self.choices:
            raise ValueError(f"param {self.name!r}: a categorical param needs `choices`")
        if self.kind != "categorical" and self.scale <= 0:
            raise ValueError(f"param {self.name!r}: `scale` must be positive, got {self.scale}")
        if self.kind == "log" and self.min is not None and self.min < 0:
            raise ValueError(f"param {self.name!r}: a log param needs min >= 0, got {self.min}")
        if self.condition is not None:
            Constraint(self.condition)  # validates the grammar early, naming the expression

    @property
    def is_integer(self) -> bool:
        return self.integer or self.kind == "int" or self.multiple_of is not None

    def to_basic(self, value: Any) -> float:
        """Map a legal value to the optimizer's unbounded coordinate."""
        if self.kind == "categorical":
            return float(self.choices.index(value))
        v = float(value)
        if self.kind == "log":
            return math.log(max(v, 1e-300)) / self.scale
        if self.kind == "logit":
            v = min(max(v, 1e-12), 1 - 1e-12)
            return math.log(v / (1 - v)) / self.scale
        return v / self.scale

    def from_basic(self, x: float) -> Any:
        """Map a coordinate back to a legal value: clamped, rounded, on the allowed grid."""
        if self.kind == "categorical":
            idx = int(round(x))
            return self.choices[min(max(idx, 0), len(self.choices) - 1)]
        if self.kind == "log":
            v = math.exp(min(x * self.scale, 700.0))
        elif self.kind == "logit":
            v = 1.0 / (1.0 + math.exp(min(-x * self.scale, 700.0)))
        else:
            v = x * self.scale
        return self.clamp(v)

    def clamp(self, value: float) -> Any:
        """Clamp to bounds and round to the integer/multiple grid, staying inside the bounds."""
        v = float(value)
        lo = self.min if self.min is not None else -math.inf
        hi = self.max if self.max is not None else math.inf
        v = min(max(v, lo), hi)
        if self.multiple_of:
            m = self.multiple_of
            r = round(v / m) * m
            if r < lo:
                r += m
            if r > hi:
                r -= m
            return int(r)
        if self.is_integer:
            r = round(v)
            r = min(max(r, math.ceil(lo)), math.floor(hi))
            return int(r)
        return v

    def basic_bounds(self) -> tuple[float, float]:
        """Bounds of the basic coordinate (used for sampling and box constraints)."""
        if self.kind == "categorical":
            return (-0.5, len(self.choices) - 0.5)
        lo = self.to_basic(self.min) if self.min is not None else -math.inf
        hi = self.to_basic(self.max) if self.max is not None else math.inf
        if self.kind == "log" and self.min is not None and self.min <= 0:
            lo = -math.inf
        return (lo, hi)

    def default_center(self) -> Any:
        if self.center is not None:
            return self.center
        if self.kind == "categorical":
            return self.choices[0]
        lo, hi = self.basic_bounds()
        if math.isinf(lo) and math.isinf(hi):
            return self.from_basic(0.0)
        if math.isinf(lo) or math.isinf(hi):
            return self.from_basic(hi if math.isinf(lo) else lo)
        return self.from_basic((lo + hi) / 2)


@dataclass(frozen=True)
class Constraint:
    """A boolean expression over parameter names, e.g. ``d_model % n_heads == 0``.

    Parsed once and evaluated by the bounded interpreter of `carbs.expressions` (arithmetic,
    comparisons, and/or/not; short, shallow, no exponent towers): no `eval`, so a sweep file
    cannot run code or stall the process. Raises ExpressionError (a ValueError) when refused.
    """

    expr: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "_tree", parse_expression(self.expr))

    @property
    def names(self) -> set[str]:
        return names_in(self._tree)  # type: ignore[attr-defined]

    def value(self, values: Mapping[str, Any]) -> bool:
        """The expression's truth; ExpressionError when it cannot be evaluated on `values`."""
        return bool(evaluate(self._tree, values))  # type: ignore[attr-defined]

    def holds(self, values: Mapping[str, Any]) -> bool:
        """Whether the constraint holds; a configuration it cannot be evaluated on (a division
        by zero, a value out of bounds) does not satisfy it."""
        try:
            return self.value(values)
        except ExpressionError:
            return False


@functools.lru_cache(maxsize=256)
def _parsed(expr: str) -> Constraint:
    """Parse a condition once; conditions are re-evaluated for every candidate."""
    return Constraint(expr)


@dataclass(frozen=True)
class SearchSpace:
    """Parameters to search, constants passed through unchanged, and constraints."""

    params: tuple[Param, ...]
    constraints: tuple[Constraint, ...] = ()
    fixed: Mapping[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def center(self) -> dict[str, Any]:
        return {p.name: p.default_center() for p in self.params}

    def full(self, searched: Mapping[str, Any]) -> dict[str, Any]:
        """Searched values merged with the fixed ones: what a workload receives."""
        return {**dict(self.fixed), **dict(searched)}

    def is_feasible(self, searched: Mapping[str, Any]) -> bool:
        env = self.full(searched)
        return all(c.holds(env) for c in self.constraints)

    def is_active(self, name: str, searched: Mapping[str, Any]) -> bool:
        """Whether parameter `name` matters given the other values (its `condition` holds)."""
        cond = self.param(name).condition
        return cond is None or _parsed(cond).holds(self.full(searched))

    def canonical(self, searched: Mapping[str, Any]) -> dict[str, Any]:
        """Legal values (clamped, rounded) with every inactive conditional param at its centre.

        Why: two configurations that differ only in an inactive parameter are the same trial;
        the optimizer groups, deduplicates and models them as one point.
        """
        out = {
            p.name: (p.clamp(searched[p.name]) if p.kind != "categorical" else searched[p.name])
            for p in self.params
        }
        for p in self.params:
            if p.condition is not None and not _parsed(p.condition).holds(self.full(out)):
                out[p.name] = p.default_center()
        return out

    def to_basic(self, searched: Mapping[str, Any]) -> list[float]:
        return [p.to_basic(searched[p.name]) for p in self.params]

    def from_basic(self, xs: Sequence[float]) -> dict[str, Any]:
        return {p.name: p.from_basic(x) for p, x in zip(self.params, xs, strict=True)}
