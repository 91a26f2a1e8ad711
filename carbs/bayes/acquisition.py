"""CARBS' acquisition, as small pure functions over candidate batches (log domain).

The central equation (CARBS): value = EI(candidate vs. Pareto value at its predicted cost)
x search-prior probability x probability of success x [predicted cost <= max cost].
Working in logs keeps products of tiny probabilities from underflowing to a tie at zero.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from botorch.acquisition.analytic import _log_ei_helper


def log_expected_improvement(
    mean: np.ndarray, var: np.ndarray, best: np.ndarray, exploration_bias: float = 0.0
) -> np.ndarray:
    """Log EI of a maximised surrogate over a per-candidate incumbent.

    mean, var, best: (n,) posterior mean, posterior variance, incumbent value. Returns (n,).
    EI = sigma * h((mean - best - bias) / sigma), h(u) = phi(u) + u Phi(u), computed stably by
    BoTorch's `_log_ei_helper`.
    """
    sigma = np.sqrt(np.maximum(var, 1e-18))
    u = torch.as_tensor((mean - best - exploration_bias) / sigma, dtype=torch.float64)
    return _log_ei_helper(u).numpy() + np.log(sigma)


def clamped_pareto_value(pareto_value: np.ndarray, floor: float | None) -> np.ndarray:
    """(n,) Pareto value at each candidate's cost, raised to at least `floor`.

    Why (CARBS): comparing a cheap candidate only with the cheap end of the frontier lets it
    "improve" cheaply forever; flooring the incumbent at the frontier's value at a random cost
    makes cheap candidates compete with a better incumbent, pushing the search to higher cost.
    """
    if floor is None:
        return pareto_value
    return np.maximum(pareto_value, floor)


def random_threshold_cost(
    min_cost: float, max_cost: float, rng: np.random.Generator, cost_cap: float | None = None
) -> float:
    """A log-uniform cost between the frontier's cheapest and dearest member (capped)."""
    hi = min(max_cost, cost_cap) if cost_cap is not None else max_cost
    lo = min(min_cost, hi)
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def log_success_probability(mean: np.ndarray | None, var: np.ndarray | None) -> np.ndarray | float:
    """Log P(success) from a GP fitted to +1 (success) / -1 (failure) labels.

    mean, var: (n,) latent posterior. P = Phi(mean / sd). None (no failures seen) gives log 1.
    """
    if mean is None or var is None:
        return 0.0
    z = torch.as_tensor(mean / np.sqrt(np.maximum(var, 1e-12)), dtype=torch.float64)
    return torch.special.log_ndtr(z).numpy()


def log_cost_mask(predicted_cost: np.ndarray, max_cost: float | None) -> np.ndarray | float:
    """(n,) 0 where the predicted cost is within `max_cost`, -inf beyond (None: no mask)."""
    if max_cost is None:
        return 0.0
    return np.where(predicted_cost <= max_cost, 0.0, -np.inf)


def acquisition_value(
    log_ei: np.ndarray,
    log_prior: np.ndarray,
    log_success: np.ndarray | float,
    log_mask: np.ndarray | float,
) -> np.ndarray:
    """(n,) log of CARBS' product: EI x prior probability x P(success) x cost mask."""
    return log_ei + log_prior + log_success + log_mask
