"""Settings of the Bayesian optimizer, with CARBS' defaults where CARBS has one.

Why a dataclass: a sweep file's `optimizer.settings` mapping lands here by keyword, so an unknown
or mistyped key fails loudly with the list of valid ones instead of being silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class CarbsSettings:
    """Knobs of `CarbsOptimizer`.

    search_radius: std-dev of the Gaussian search distribution around Pareto members, in basic
        units (natural log for log params, `scale` units for linear ones).
    radius_scales: candidates step with std-dev search_radius x one of these (drawn per
        candidate); (1.0,) is CARBS' single radius. Why the smaller entries: on the scaling
        world one radius-sized step (0.5 in ln lr = x1.65) moves the loss by more than the 1 %
        a frontier point must be tuned to, so a single radius stalls at a few % off the frontier
        (benchmarks/optimizer/README.md).
    num_random_samples: successes needed before the GP models are used (random around centre).
    num_candidates_per_dim: candidates scored per suggestion, per search dimension.
    max_candidates: cap on the candidate count (keeps scoring cheap in many dimensions).
    exploration_bias: subtracted from the improvement in EI (surrogate units); larger explores.
    resample_frequency: at most one re-run of a Pareto member per this many successes (0
        disables); a member is re-run only where the measured noise leaves its place on the
        frontier in doubt, never on a deterministic workload (`carbs.bayes.resample`).
    max_suggestion_cost: candidates predicted to cost more are masked out (None: no mask).
    min_pareto_cost_fraction: the cheapest Pareto member is chosen below this cost quantile.
    conservative_pareto: CARBS' conservative Pareto grouping.
    clamp_pareto_value: EI against the Pareto value clamped at a random cost (push to higher cost).
    max_train_points: at most this many observations train each GP; beyond it a deterministic
        subset near the Pareto set (plus a stride sample for coverage) is used. Keeps suggest
        fast at thousands of observations.
    max_fit_points: hyperparameters are fitted on at most this many of the training points (an
        even stride); the model then conditions on all of them.
    fit_maxiter: L-BFGS iterations per GP hyperparameter fit.
    refit_fraction: hyperparameters are refitted when the observation count has grown by this
        fraction since the last full fit (0: at every observation); in between, the last fit's
        hyperparameters are reused on the new data. Deterministic: see `anchor_count`.
    categorical_switch_prob: chance that a candidate re-draws each categorical parameter.
    cost_band_fraction: share of suggestions (drawn at random) that must land in a random cost
        band: half of them from the costliest run to `cost_band_growth` x its cost (capped at
        max_suggestion_cost), half over the frontier's span and just below; 0 disables. Why:
        when trial noise hides what more compute buys, EI alone keeps a sweep near the costs
        it started at (seen: 23 real CPU trials within 2x of each other), and scaling laws
        need a frontier spanning decades.
    cost_band_growth: how far past the costliest run a band may reach per suggestion.
    cost_fill_share: a stratum of the cost span from the cheapest success to the costliest
        frontier group (one band wide) holding fewer than this share of the fullest stratum's
        trials is filled before any other band, so the cheap end of the frontier stays tuned
        while EI gathers trials at the cap. Off (0) by default: on the scaling world family
        (24 worlds, trials to a 1e18 cap) 0.5 cut the pick's median prediction error at 100x
        from 4.7 to 3.5 % but raised its median regret from 1.06 to 1.46 %, and it cost
        30-trial sweeps 1.0-3.4 points of gap at the middle budget (`benchmarks/optimizer`).
    max_cost_growth: no suggestion is predicted to cost more than this x the costliest success
        (bounds the leaps EI alone makes; see `carbs.bayes.spending`).
    max_total_cost: the sweep's total budget (None: none stated); suggestions then never cost
        more than what is left of it, and it paces the climb schedule.
    max_trials: the sweep's trial count (None: none stated); paces the climb schedule.
    climb_fraction: with a per-trial cap and a budget (cost or trials), the costliest trial is
        scheduled to reach the cap once this fraction of the budget is used.
    climb_every: without a cap and a budget, a suggestion aims at sqrt(max_cost_growth) x the
        costliest success whenever none of the last this-many successes raised it (0: never).
    """

    search_radius: float = 0.5
    radius_scales: tuple[float, ...] = (1.0, 0.5, 0.25)
    num_random_samples: int = 4
    num_candidates_per_dim: int = 100
    max_candidates: int = 2000
    exploration_bias: float = 0.5
    resample_frequency: int = 5
    max_suggestion_cost: float | None = None
    min_pareto_cost_fraction: float = 0.2
    conservative_pareto: bool = True
    clamp_pareto_value: bool = True
    max_train_points: int = 256
    max_fit_points: int = 128
    fit_maxiter: int = 75
    refit_fraction: float = 0.1
    categorical_switch_prob: float = 0.2
    cost_band_fraction: float = 0.25
    cost_band_growth: float = 4.0
    cost_fill_share: float = 0.0
    max_cost_growth: float = 4.0
    max_total_cost: float | None = None
    max_trials: int | None = None
    climb_fraction: float = 0.5
    climb_every: int = 5

    @classmethod
    def from_mapping(cls, settings: dict[str, Any]) -> CarbsSettings:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(
                f"optimizer settings: unknown key(s) {unknown}; valid keys are {sorted(known)}"
            )
        from pydantic import TypeAdapter, ValidationError

        try:  # types as declared (a string where a number belongs fails here, not mid-sweep)
            out = TypeAdapter(cls).validate_python(dict(settings), strict=False)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"])
            raise ValueError(f"optimizer settings: {key}: {err['msg']}") from exc
        for key, (lo, hi) in _RANGES.items():
            value = getattr(out, key)
            for v in value if isinstance(value, tuple) else (value,):
                if v is not None and not (lo <= v <= hi):
                    raise ValueError(f"optimizer settings: {key}: {v!r} is outside [{lo}, {hi}]")
        if not out.radius_scales:
            raise ValueError("optimizer settings: radius_scales: give at least one scale")
        return out


# Sane ranges of the settings: beyond them a suggestion would take hours or gigabytes, or the
# search would not move. Why checked at load: a sweep file is refused naming the key, before
# any trial runs.
_RANGES: dict[str, tuple[float, float]] = {
    "search_radius": (1e-3, 10.0),
    "radius_scales": (1e-3, 10.0),
    "num_random_samples": (0, 10_000),
    "num_candidates_per_dim": (1, 10_000),
    "max_candidates": (1, 100_000),
    "exploration_bias": (-10.0, 10.0),
    "resample_frequency": (0, 1_000_000),
    "max_suggestion_cost": (0.0, 1e300),
    "min_pareto_cost_fraction": (0.0, 1.0),
    "max_train_points": (8, 100_000),
    "max_fit_points": (8, 100_000),
    "fit_maxiter": (1, 10_000),
    "refit_fraction": (0.0, 10.0),
    "categorical_switch_prob": (0.0, 1.0),
    "cost_band_fraction": (0.0, 1.0),
    "cost_band_growth": (1.0, 1e6),
    "cost_fill_share": (0.0, 1.0),
    "max_cost_growth": (1.0, 1e6),
    "max_total_cost": (0.0, 1e300),
    "max_trials": (1, 100_000_000),
    "climb_fraction": (0.0, 1.0),
    "climb_every": (0, 1_000_000),
}
