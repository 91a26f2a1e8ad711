"""Everything fitted from the observations: warps, the four GPs, the Pareto set.

Why a separate step: these depend on the observations alone (not on pending trials or the batch
size), so the optimizer fits them once per new observation and reuses them for every suggest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from carbs.bayes.encoding import ConfigKey, SpaceEncoder
from carbs.bayes.models import FittedGP, fit_gp
from carbs.bayes.settings import CarbsSettings
from carbs.bayes.subset import training_subset
from carbs.bayes.warping import LogCostScale, QuantileWarp
from carbs.optimizer import Observation
from carbs.pareto import group_by_key, pareto_groups


@dataclass
class Surrogates:
    """Fitted state for one set of observations.

    z: (n_success, dim) search coordinates of successes; keys: their config keys.
    groups: indices into the successes, one list per distinct config; frontier: the Pareto groups
    (cheapest first). origins: (k, dim) coordinates of the frontier's configs.
    """

    z: np.ndarray
    keys: list[ConfigKey]
    costs: np.ndarray
    losses: np.ndarray
    groups: list[list[int]]
    frontier: list[list[int]]
    origins: np.ndarray
    warp: QuantileWarp
    cost_scale: LogCostScale
    output_gp: FittedGP
    cost_gp: FittedGP
    pareto_gp: FittedGP | None
    pareto_scaled_cost_range: tuple[float, float]
    success_gp: FittedGP | None

    def hyperparameters(self) -> dict[str, dict[str, torch.Tensor]]:
        """Fitted hyperparameters of every model present, by model name."""
        models = {
            "output": self.output_gp,
            "cost": self.cost_gp,
            "pareto": self.pareto_gp,
            "success": self.success_gp,
        }
        return {k: m.hyperparameters() for k, m in models.items() if m is not None}

    def frontier_cost_range(self) -> tuple[float, float]:
        """Mean cost of the cheapest and of the dearest Pareto group."""
        first, last = self.frontier[0], self.frontier[-1]
        return float(self.costs[first].mean()), float(self.costs[last].mean())

    def pareto_value(self, scaled_log_cost: np.ndarray) -> np.ndarray:
        """(n,) scaled log-costs -> (n,) Pareto surrogate value (clamped to the frontier's range)."""
        lo, hi = self.pareto_scaled_cost_range
        c = np.clip(scaled_log_cost, lo, hi)
        if self.pareto_gp is None:
            g = self.frontier[0]
            return np.full(len(c), float(self.warp.to_surrogate(self.losses[g].mean())))
        mean, _ = self.pareto_gp.predict(torch.as_tensor(c, dtype=torch.float64).unsqueeze(-1))
        return mean


def fit_surrogates(
    encoder: SpaceEncoder,
    successes: Sequence[Observation],
    failures: Sequence[Observation],
    settings: CarbsSettings,
    seed: int,
    hyperparameters: dict[str, dict[str, torch.Tensor]] | None = None,
) -> Surrogates:
    """Fit every model CARBS uses from the successes (>= 1) and failures.

    hyperparameters: per model name ("output", "cost", "pareto", "success"), a state_dict from an
    earlier fit to reuse instead of fitting (see `CarbsOptimizer` for when that happens).
    """
    hyper = hyperparameters or {}
    params = [encoder.space.canonical(o.params) for o in successes]
    keys = [encoder.key(p) for p in params]
    z = encoder.encode_many(params)
    costs = np.asarray([o.cost for o in successes], dtype=float)
    losses = np.asarray([o.loss for o in successes], dtype=float)
    groups = group_by_key(keys)
    # a stopped trial's optimistic bound informs the GPs but is no frontier member
    results = [g for g in groups if not any(successes[i].bound for i in g)] or groups
    frontier = pareto_groups(
        results, costs, losses, settings.min_pareto_cost_fraction, settings.conservative_pareto
    )
    origins = z[[g[0] for g in frontier]]

    warp = QuantileWarp.fit(losses)
    surrogate = warp.to_surrogate(losses)
    cost_scale = LogCostScale.fit(costs)
    scaled_cost = cost_scale.forward(costs)

    anchors = [i for g in frontier for i in g]
    rows = training_subset(z, anchors, settings.max_train_points)
    x = encoder.to_gp(z[rows])
    fit = dict(seed=seed, maxiter=settings.fit_maxiter)
    fit_rows = training_subset(z[rows], [], settings.max_fit_points, coverage_fraction=1.0)
    output_gp = _fit(x, surrogate[rows], fit_rows, hyper.get("output"), fit)
    cost_gp = _fit(x, scaled_cost[rows], fit_rows, hyper.get("cost"), fit)

    g_cost = np.asarray([scaled_cost[g].mean() for g in frontier])
    g_value = np.asarray([surrogate[g].mean() for g in frontier])
    pareto_gp = None
    if len(frontier) >= 2:
        pareto_gp = fit_gp(
            torch.as_tensor(g_cost, dtype=torch.float64).unsqueeze(-1),
            g_value,
            hyperparameters=hyper.get("pareto"),
            **fit,
        )
    success_gp = None
    if failures:
        zf = encoder.encode_many([encoder.space.canonical(o.params) for o in failures])
        success_gp = _fit_success(encoder, z, zf, anchors, settings, (hyper.get("success"), fit))
    return Surrogates(
        z=z,
        keys=keys,
        costs=costs,
        losses=losses,
        groups=groups,
        frontier=frontier,
        origins=origins,
        warp=warp,
        cost_scale=cost_scale,
        output_gp=output_gp,
        cost_gp=cost_gp,
        pareto_gp=pareto_gp,
        pareto_scaled_cost_range=(float(g_cost.min()), float(g_cost.max())),
        success_gp=success_gp,
    )


def _fit_success(
    encoder: SpaceEncoder,
    z: np.ndarray,
    zf: np.ndarray,
    anchors: list[int],
    settings: CarbsSettings,
    how: tuple[dict[str, torch.Tensor] | None, dict],
) -> FittedGP:
    """The success classifier (+1 success, -1 failure, regressed): failures keep up to half the
    training points, the successes the rest, the frontier's among them (`anchors`)."""
    z_all = np.concatenate([z, zf])
    labels = np.concatenate([np.ones(len(z)), -np.ones(len(zf))])
    keep_f = training_subset(zf, [], settings.max_train_points // 2, coverage_fraction=1.0)
    keep_s = training_subset(z, anchors, settings.max_train_points - len(keep_f))
    rows = np.concatenate([keep_s, len(z) + keep_f])
    fit_rows = training_subset(z_all[rows], [], settings.max_fit_points, coverage_fraction=1.0)
    return _fit(encoder.to_gp(z_all[rows]), labels[rows], fit_rows, how[0], how[1])


def _fit(
    x: torch.Tensor,
    y: np.ndarray,
    fit_rows: np.ndarray,
    hyperparameters: dict[str, torch.Tensor] | None,
    fit: dict,
) -> FittedGP:
    """Fit hyperparameters on the `fit_rows` (an even stride), then condition on all rows.

    Why: the marginal-likelihood fit is the dominant cost and needs far fewer points to pin
    lengthscales than prediction needs to be accurate near the frontier.
    """
    if hyperparameters is None and len(fit_rows) < len(x):
        hyperparameters = fit_gp(x[fit_rows], y[fit_rows], **fit).hyperparameters()
    return fit_gp(x, y, hyperparameters=hyperparameters, **fit)
