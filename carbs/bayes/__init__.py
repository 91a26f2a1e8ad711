"""CARBS (cost-aware Pareto-region Bayesian search) rebuilt on BoTorch/GPyTorch."""

from carbs.bayes.optimizer import CarbsOptimizer
from carbs.bayes.settings import CarbsSettings

__all__ = ["CarbsOptimizer", "CarbsSettings"]
