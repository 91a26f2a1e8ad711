"""The optimizer interface every sweep drives: ask (`suggest`) and tell (`observe`).

Why a protocol: the sweep loop, the service and the compatibility layer talk to any optimizer
the same way, and an optimizer's state must be a pure function of (space, seed, observations):
the sweep rebuilds it from SQL rows after every restart by replaying `observe`, never by
unpickling.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from carbs.space import SearchSpace


@dataclass(frozen=True)
class Observation:
    """The outcome of one trial.

    `params` holds the searched values only. `loss` is None exactly when `failed` is True
    (a config failure: divergence, OOM, invalid). `cost` is in the sweep's cost unit (FLOPs for
    the MoE trainer), positive: what a run of these params costs, its place on the cost axis.
    `spent`: what this observation actually added to the sweep's bill, when that differs (a
    decay branch paid only its cool-down); None means `cost`. `derived`: a by-product of
    another trial (a decay branch): it informs the models and the bill, but is not a trial of
    its own, so it neither paces the trial count nor the cost climb. `bound`: `loss` is not a
    result but a lower bound on it, the most optimistic final loss of a trial stopped early
    (`cost` the planned run's, `spent` what it ran): the loss model learns that the region is
    worse than the frontier, but a bound never joins the frontier nor starts the climb.
    """

    params: Mapping[str, Any]
    cost: float
    loss: float | None = None
    failed: bool = False
    suggestion_id: str | None = None
    spent: float | None = None
    derived: bool = False
    bound: bool = False

    def __post_init__(self) -> None:
        if self.failed == (self.loss is not None) and not self.failed:
            raise ValueError("a successful observation needs a loss")


@dataclass(frozen=True)
class Suggestion:
    """A proposed configuration (searched params only) with a stable id."""

    params: dict[str, Any]
    suggestion_id: str = field(default_factory=lambda: uuid.uuid4().hex)


class Optimizer(Protocol):
    """Ask/tell interface. Implementations must be deterministic given seed + observation order."""

    space: SearchSpace

    def suggest(self, n: int = 1, pending: Sequence[Mapping[str, Any]] = ()) -> list[Suggestion]:
        """Return `n` distinct feasible suggestions, avoiding the `pending` (in-flight) configs."""
        ...

    def observe(self, observation: Observation) -> None:
        """Record a finished trial (success or config failure)."""
        ...

    def forget(self, suggestion_id: str) -> None:
        """Drop a suggestion that will never be observed (cancelled, infrastructure failure)."""
        ...
