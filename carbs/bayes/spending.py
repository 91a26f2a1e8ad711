"""How much one suggestion may cost, and how fast a sweep's costliest trial should climb.

Why: EI with clamped Pareto values decides cost only indirectly, and on its own it both stalls
(2 of 5 seeds never went past 3e17 FLOPs on a 3e18 budget) and leaps (single trials 100-1000x
past the costliest success). Spending is planned here instead, from three facts the optimizer
knows: the costliest success so far, the money spent, and (when the user states them) the
per-trial cap, the total budget and the trial count.

- Ceiling: no suggestion is predicted to cost more than `max_cost_growth` x the costliest
  success, the per-trial cap, or what is left of the total budget after the in-flight trials.
- Climb schedule (needs a per-trial cap and a total budget or trial count): the costliest trial
  should reach the cap once `climb_fraction` of the budget is used, log-linearly from the first
  success's cost; when the sweep is behind that, the suggestion is a cost band aimed at the
  schedule, each step at most `max_cost_growth` past the costliest success.
- Without a cap or a budget (the default schedule): when none of the last `climb_every`
  successes was the costliest so far, the next suggestion is a band at sqrt(`max_cost_growth`)
  x the costliest success, so cost keeps climbing by at most that factor per `climb_every`
  trials instead of stalling where it started; cost bands (a quarter of suggestions, half of
  them upward) climb faster where costlier runs pay off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SpendingPlan:
    """ceiling: the most a suggestion may be predicted to cost (None: unbounded), the budget
    left included. left: what is left of the total budget after the in-flight trials (None: no
    total budget); a batch's later picks share it. climb_target: the cost the schedule asks the
    next band pick to aim at, when the sweep's costliest success is behind the schedule (None:
    on schedule or no schedule)."""

    ceiling: float | None
    climb_target: float | None
    left: float | None = None

    def after(self, cost: float) -> SpendingPlan:
        """The plan for the next pick of the same batch, once a pick of `cost` is made."""
        if self.left is None:
            return self
        left = max(self.left - cost, 0.0)
        ceiling = left if self.ceiling is None else min(self.ceiling, left)
        return SpendingPlan(ceiling, None, left)


@dataclass(frozen=True)
class SpendingLimits:
    """The stated limits and the climb's pace a plan is made under (the `CarbsSettings`
    fields of the same names; see the module docstring)."""

    max_cost_growth: float
    max_suggestion_cost: float | None
    max_total_cost: float | None
    max_trials: int | None
    climb_fraction: float
    climb_every: int = 0


def spending_plan(
    success_costs: np.ndarray,
    all_costs: np.ndarray,
    pending_cost: float,
    n_observations: int,
    limits: SpendingLimits,
) -> SpendingPlan:
    """The ceiling and the climb target for the next suggestion (see the module docstring).

    success_costs: costs of successful trials in observation order; all_costs: of every
    observed trial (failures cost money too); pending_cost: predicted cost of in-flight ones.
    """
    max_cost_growth = limits.max_cost_growth
    max_suggestion_cost = limits.max_suggestion_cost
    max_total_cost = limits.max_total_cost
    if len(success_costs) == 0:
        left = None
        if max_total_cost is not None:
            left = max(max_total_cost - float(np.sum(all_costs)) - pending_cost, 0.0)
        caps = [c for c in (max_suggestion_cost, left) if c is not None]
        return SpendingPlan(min(caps) if caps else None, None, left)
    costliest = float(np.max(success_costs))
    ceiling = costliest * max_cost_growth
    if max_suggestion_cost is not None:
        ceiling = min(ceiling, max_suggestion_cost)
    spent = float(np.sum(all_costs))
    left = None
    if max_total_cost is not None:
        left = max(max_total_cost - spent - pending_cost, 0.0)
        ceiling = min(ceiling, left)
    progress = budget_progress(spent, n_observations, max_total_cost, limits.max_trials)
    target = None
    if max_suggestion_cost is None or progress is None:
        if limits.climb_every > 0 and stalled(success_costs, limits.climb_every):
            target = min(costliest * math.sqrt(max_cost_growth), ceiling)
            if target <= costliest:
                target = None
    else:
        start = min(float(success_costs[0]), max_suggestion_cost)
        wanted = scheduled_top_cost(start, max_suggestion_cost, progress, limits.climb_fraction)
        behind = costliest * math.sqrt(max_cost_growth) < wanted
        if behind:
            target = min(wanted, ceiling)
            if target <= costliest:
                target = None
    return SpendingPlan(ceiling, target, left)


def stalled(success_costs: np.ndarray, window: int) -> bool:
    """True when none of the last `window` successes was the costliest so far."""
    if len(success_costs) <= window:
        return False
    before = float(np.max(success_costs[:-window]))
    return float(np.max(success_costs[-window:])) <= before


def budget_progress(
    spent: float, n_observations: int, max_total_cost: float | None, max_trials: int | None
) -> float | None:
    """Fraction of the sweep's budget used: the larger of money and trials (None: no budget)."""
    parts = []
    if max_total_cost is not None and max_total_cost > 0:
        parts.append(spent / max_total_cost)
    if max_trials is not None and max_trials > 0:
        parts.append(n_observations / max_trials)
    return min(max(parts), 1.0) if parts else None


def scheduled_top_cost(start: float, cap: float, progress: float, climb_fraction: float) -> float:
    """Where the costliest trial should be at `progress`: log-linear from `start` to `cap`,
    reached at `climb_fraction` of the budget (later trials refine at the top)."""
    if cap <= start or climb_fraction <= 0:
        return cap
    f = min(1.0, progress / climb_fraction)
    return float(start * (cap / start) ** f)


def ceiling_mask(predicted_cost: np.ndarray, ceiling: float | None) -> np.ndarray:
    """(n,) True where a candidate fits under the ceiling; where none does, the cheapest ones
    (within 10 % of the cheapest), so the last trials of a budget stay as small as they can."""
    if ceiling is None:
        return np.ones(len(predicted_cost), dtype=bool)
    fits = predicted_cost <= ceiling
    if fits.any():
        return fits
    return predicted_cost <= float(np.min(predicted_cost)) * 1.1
