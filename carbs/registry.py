"""Optimizers by name, so a sweep spec can choose one (`optimizer: {name: ...}`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from carbs.local_search import LocalSearchOptimizer, RandomSearchOptimizer
from carbs.optimizer import Optimizer
from carbs.space import SearchSpace

OptimizerFactory = Callable[..., Optimizer]


def _carbs(
    space: SearchSpace,
    seed: int = 0,
    max_cost: float | None = None,
    price: Callable[[dict[str, Any]], float | None] | None = None,
    max_total_cost: float | None = None,
    max_trials: int | None = None,
    **settings: Any,
) -> Optimizer:
    """The BoTorch CARBS optimizer; `max_cost` (a sweep's per-trial cost limit) becomes its
    `max_suggestion_cost` mask unless the settings name one; `price` (a config's exact cost,
    when the workload can tell before running it) replaces the cost model for that mask;
    `max_total_cost` and `max_trials` (the sweep's budget) pace its spending."""
    # imported lazily: BoTorch takes seconds to import and the baselines do not need it
    from carbs.bayes import CarbsOptimizer

    if max_cost is not None:
        settings.setdefault("max_suggestion_cost", max_cost)
    if max_total_cost is not None:
        settings.setdefault("max_total_cost", max_total_cost)
    if max_trials is not None:
        settings.setdefault("max_trials", max_trials)
    return CarbsOptimizer(space, seed=seed, price=price, **settings)


_REGISTRY: dict[str, OptimizerFactory] = {
    "carbs": _carbs,
    "local": LocalSearchOptimizer,
    "random": RandomSearchOptimizer,
}
DEFAULT_OPTIMIZER = "carbs"


def register(name: str, factory: OptimizerFactory) -> None:
    _REGISTRY[name] = factory


def accepts(name: str | None, key: str) -> bool:
    """Whether the optimizer registered as `name` (None: the default) takes keyword `key`.

    Why: a sweep passes its per-trial cost cap (`max_cost`) only to optimizers that use it.
    """
    import inspect

    factory = _REGISTRY.get(name or DEFAULT_OPTIMIZER)
    if factory is None:
        return False
    return key in inspect.signature(factory).parameters


def available() -> list[str]:
    return sorted(_REGISTRY)


def build_optimizer(
    space: SearchSpace,
    seed: int,
    name: str | None = None,
    settings: Mapping[str, Any] | None = None,
) -> Optimizer:
    """Build a fresh optimizer; the caller replays stored observations into it."""
    key = name or DEFAULT_OPTIMIZER
    if key not in _REGISTRY:
        raise ValueError(f"unknown optimizer {key!r}; choose one of {available()}")
    return _REGISTRY[key](space, seed=seed, **dict(settings or {}))
