"""A simple, deterministic optimizer: Gaussian local search around the Pareto frontier.

Why it exists: the walking skeleton needs a working optimizer behind the `Optimizer` protocol
before the Bayesian one lands, and it stays as a cheap baseline for benchmarks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from carbs.optimizer import Observation, Suggestion
from carbs.pareto import pareto_mask
from carbs.space import SearchSpace


class LocalSearchOptimizer:
    """Sample around the search centre, then around random Pareto members, in basic space."""

    def __init__(self, space: SearchSpace, seed: int = 0, radius: float = 0.5) -> None:
        self.space = space
        self.seed = seed
        self.radius = radius
        self.observations: list[Observation] = []
        self._forgotten: set[str] = set()

    def observe(self, observation: Observation) -> None:
        self.observations.append(observation)

    def forget(self, suggestion_id: str) -> None:
        self._forgotten.add(suggestion_id)

    def _centres(self) -> list[dict[str, Any]]:
        ok = [o for o in self.observations if not o.failed and o.loss is not None]
        if not ok:
            return [self.space.center()]
        mask = pareto_mask([o.cost for o in ok], [o.loss for o in ok])
        return [dict(o.params) for o, m in zip(ok, mask, strict=True) if m]

    def suggest(self, n: int = 1, pending: Sequence[Mapping[str, Any]] = ()) -> list[Suggestion]:
        rng = np.random.default_rng([self.seed, len(self.observations), len(pending)])
        seen = {_key(p) for p in pending} | {_key(o.params) for o in self.observations}
        centres = self._centres()
        out: list[Suggestion] = []
        for _ in range(200 * max(n, 1)):
            if len(out) == n:
                break
            centre = centres[rng.integers(len(centres))]
            x = np.asarray(self.space.to_basic(centre))
            lo, hi = zip(*(p.basic_bounds() for p in self.space.params), strict=True)
            width = np.where(np.isfinite(np.subtract(hi, lo)), np.subtract(hi, lo), 1.0)
            cand = np.clip(x + rng.normal(0, self.radius, len(x)) * width / 2, lo, hi)
            params = self.space.from_basic(cand.tolist())
            if _key(params) in seen or not self.space.is_feasible(params):
                continue
            seen.add(_key(params))
            out.append(Suggestion(params=params))
        if len(out) < n:
            raise RuntimeError(
                f"could not find {n} distinct feasible suggestions; the space may be too small "
                "or its constraints unsatisfiable"
            )
        return out


def _key(params: Mapping[str, Any]) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in params.items()))


class RandomSearchOptimizer:
    """Uniform random search in the basic space (a baseline for benchmarks).

    Bounded coordinates are drawn uniformly between their basic bounds (log-uniform for log
    params); unbounded ones from a unit normal around the centre; categoricals uniformly.
    """

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        self.space = space
        self.seed = seed
        self.observations: list[Observation] = []

    def observe(self, observation: Observation) -> None:
        self.observations.append(observation)

    def forget(self, suggestion_id: str) -> None:
        return None

    def suggest(self, n: int = 1, pending: Sequence[Mapping[str, Any]] = ()) -> list[Suggestion]:
        rng = np.random.default_rng([self.seed, len(self.observations), len(pending)])
        seen = {_key(p) for p in pending} | {_key(o.params) for o in self.observations}
        centre = self.space.to_basic(self.space.center())
        out: list[Suggestion] = []
        for _ in range(200 * max(n, 1)):
            if len(out) == n:
                break
            xs = []
            for p, c in zip(self.space.params, centre, strict=True):
                lo, hi = p.basic_bounds()
                if np.isfinite(lo) and np.isfinite(hi):
                    xs.append(float(rng.uniform(lo, hi)))
                else:
                    xs.append(float(c + rng.normal()))
            params = self.space.canonical(self.space.from_basic(xs))
            if _key(params) in seen or not self.space.is_feasible(params):
                continue
            seen.add(_key(params))
            out.append(Suggestion(params=params))
        if len(out) < n:
            raise RuntimeError(f"could not find {n} distinct feasible random suggestions")
        return out
