"""Cost-aware early stopping: stop a running trial whose curve cannot reach the Pareto frontier at
its cost, even on the most optimistic reading the sweep's own finished curves allow.

Why this rule: a final loss is a noisy signal and learning-rate schedules bend a curve late (a
WSD cool-down drops the loss after the stable phase), so a fixed extrapolation would prune trials
that were about to win. The running curve is extrapolated to its planned cost linearly in log
FLOPs over its last evaluations (optimistic for a flattening power law), then corrected by the
most favourable ratio seen on the finished trials of the sweep (final loss / the same
extrapolation made at the same fraction of their run): the correction learns this sweep's
schedule and noise. A trial is stopped only if even that is worse than the best finished run
costing no more than it will.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Point = tuple[float, float]  # (FLOPs so far, validation loss)

FIT_POINTS = 3  # the extrapolation's slope comes from this many last evaluations
MIN_CALIBRATION_TRIALS = 3  # finished curves needed before anything is pruned


@dataclass(frozen=True)
class FinishedCurve:
    points: Sequence[Point]
    final_loss: float
    final_flops: float


@dataclass(frozen=True)
class PruneDecision:
    prune: bool
    optimistic_loss: float | None  # the most favourable final loss the curve allows
    frontier_loss: float | None  # best finished loss at no more than the planned cost
    reason: str


def extrapolate(points: Sequence[Point], to_flops: float) -> float | None:
    """The loss at `to_flops` on a line in log FLOPs through the last `FIT_POINTS` evaluations
    (least squares; a rising or flat curve is held flat)."""
    pts = [(math.log(f), y) for f, y in points if f > 0 and math.isfinite(y)][-FIT_POINTS:]
    if len(pts) < 2 or to_flops <= 0:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    slope = sum((x - mx) * (y - my) for x, y in pts) / sxx if sxx > 0 else 0.0
    x_last, y_last = pts[-1]
    return y_last + min(slope, 0.0) * max(math.log(to_flops) - x_last, 0.0)


def calibration_ratios(
    finished: Sequence[FinishedCurve], fraction: float, min_evals: int
) -> list[float]:
    """final loss / extrapolated final loss, for each finished curve cut at `fraction` of its
    FLOPs (those with fewer than `min_evals` evaluations by then are left out)."""
    out = []
    for c in finished:
        if not (c.final_flops > 0 and math.isfinite(c.final_loss)):
            continue
        seen = [p for p in c.points if p[0] <= fraction * c.final_flops * (1 + 1e-9)]
        if len(seen) < min_evals:
            continue
        pred = extrapolate(seen, c.final_flops)
        if pred is not None and pred > 0:
            out.append(c.final_loss / pred)
    return out


def frontier_loss_at(finished: Sequence[FinishedCurve], cost: float) -> float | None:
    """Best final loss among finished trials that cost no more than `cost`."""
    losses = [c.final_loss for c in finished if c.final_flops <= cost * (1 + 1e-9)]
    return min(losses) if losses else None


def decide(
    points: Sequence[Point],
    planned_cost: float,
    finished: Sequence[FinishedCurve],
    min_evals: int,
    margin: float = 0.0,
) -> PruneDecision:
    """Whether to stop the running trial with validation `points`, planned to cost
    `planned_cost`; `finished`: the sweep's succeeded trials (their curves and final results);
    `margin`: extra relative room given to the running trial."""
    if len(points) < min_evals:
        return PruneDecision(False, None, None, f"{len(points)} of {min_evals} evaluations")
    frontier = frontier_loss_at(finished, planned_cost)
    if frontier is None:
        return PruneDecision(False, None, None, "no finished trial at or below its cost")
    fraction = points[-1][0] / planned_cost
    if fraction >= 1.0 - 1e-9:
        return PruneDecision(False, None, frontier, "it has run its whole course")
    ratios = calibration_ratios(finished, fraction, min_evals)
    if len(ratios) < MIN_CALIBRATION_TRIALS:
        return PruneDecision(False, None, frontier, f"{len(ratios)} finished curves to calibrate")
    pred = extrapolate(points, planned_cost)
    if pred is None:
        return PruneDecision(False, None, frontier, "curve too short to extrapolate")
    optimistic = pred * min(ratios) * (1.0 - margin)
    if optimistic > frontier:
        why = (
            f"at {fraction:.0%} of its cost, its best reachable loss {optimistic:.4g} is above "
            f"the frontier's {frontier:.4g} at its cost"
        )
        return PruneDecision(True, optimistic, frontier, why)
    return PruneDecision(False, optimistic, frontier, "can still reach the frontier")
