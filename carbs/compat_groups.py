"""Imbue CARBS' observation-group helpers (`carbs.utils.get_pareto_groups` and friends).

Why a module of its own: code written for Imbue's package reads its Pareto front through these
functions (and the `pareto_group_count` / `pareto_area` logs computed from them), so they must
give the same groups as Imbue's. They work on `ObservationInBasic`-like objects: anything with
`real_number_input` (a 1-D tensor), `output` and `cost`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import torch


class BasicObservation(Protocol):
    real_number_input: torch.Tensor
    output: float
    cost: float


ObservationGroup = tuple[Any, ...]


def add_dict_key_prefix(input_dict: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """`{prefix + key: value}`: how CARBS names per-parameter log entries."""
    return {f"{prefix}{k}": v for k, v in input_dict.items()}


def group_observations(observations: Sequence[BasicObservation]) -> tuple[ObservationGroup, ...]:
    """Observations grouped by (numerically) identical inputs: repeats of one config."""
    pool = sorted(observations, key=lambda o: tuple(float(v) for v in o.real_number_input))
    groups: list[ObservationGroup] = []
    while pool:
        head = pool.pop()
        same = [head]
        for i in range(len(pool) - 1, -1, -1):
            if torch.all(torch.isclose(pool[i].real_number_input, head.real_number_input)):
                same.append(pool.pop(i))
        groups.append(tuple(same))
    return tuple(groups)


def observation_group_cost(group: Sequence[BasicObservation]) -> float:
    return sum(o.cost for o in group) / len(group)


def observation_group_output(group: Sequence[BasicObservation]) -> float:
    return sum(o.output for o in group) / len(group)


def pareto_area_from_groups(groups: Sequence[ObservationGroup]) -> float:
    """Area under the Pareto staircase (output x cost steps), CARBS' progress figure."""
    if len(groups) < 2:
        return 0.0
    last_cost = observation_group_cost(groups[0])
    last_output = observation_group_output(groups[0])
    area = 0.0
    for group in groups[1:]:
        cost, output = observation_group_cost(group), observation_group_output(group)
        area += (cost - last_cost) * last_output
        last_cost, last_output = cost, output
    return area


def get_pareto_groups(
    grouped_observations: Sequence[ObservationGroup],
    min_pareto_cost_fraction: float,
    better_direction_sign: int,
) -> tuple[ObservationGroup, ...]:
    """Pareto groups by cost: the best group below the cost quantile, then each costlier group
    whose mean output beats every cheaper one."""
    return _pareto_groups(grouped_observations, min_pareto_cost_fraction, better_direction_sign)


def get_pareto_groups_conservative(
    grouped_observations: Sequence[ObservationGroup],
    min_pareto_cost_fraction: float,
    better_direction_sign: int,
) -> tuple[ObservationGroup, ...]:
    """As `get_pareto_groups`, but a single-sample group must beat the best *sample* of the last
    Pareto group (a repeated group only its mean), which damps thrash in noisy regions."""
    return _pareto_groups(
        grouped_observations, min_pareto_cost_fraction, better_direction_sign, conservative=True
    )


def _pareto_groups(
    grouped: Sequence[ObservationGroup],
    fraction: float,
    sign: int,
    conservative: bool = False,
) -> tuple[ObservationGroup, ...]:
    if not grouped:
        return ()
    threshold = float(np.quantile([o.cost for g in grouped for o in g], fraction))
    cheap = [g for g in grouped if observation_group_cost(g) <= threshold]
    if conservative and any(len(g) > 1 for g in cheap):
        cheap = [g for g in cheap if len(g) > 1]

    def mean_better(g: ObservationGroup) -> float:
        return observation_group_output(g) * sign

    def max_better(g: ObservationGroup) -> float:
        return max(o.output * sign for o in g)

    first = max(cheap, key=mean_better)
    rest = sorted(
        (g for g in grouped if observation_group_cost(g) > threshold), key=observation_group_cost
    )
    front = [first]
    best_mean, best_max = mean_better(first), max_better(first)
    for g in rest:
        m = mean_better(g)
        beats = m > (best_mean if (len(g) > 1 or not conservative) else best_max)
        if beats:
            front.append(g)
            best_mean, best_max = m, max_better(g)
    return tuple(front)
