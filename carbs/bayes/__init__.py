"""CARBS (cost-aware Pareto-region Bayesian search) rebuilt on BoTorch/GPyTorch.

`CarbsOptimizer` is imported on first use: validating a sweep file's settings
(`carbs.bayes.settings`) must not pay BoTorch's seconds-long import.
"""

from __future__ import annotations

from typing import Any

from carbs.bayes.settings import CarbsSettings

__all__ = ["CarbsOptimizer", "CarbsSettings"]


def __getattr__(name: str) -> Any:
    if name == "CarbsOptimizer":
        from carbs.bayes.optimizer import CarbsOptimizer

        return CarbsOptimizer
    raise AttributeError(f"module 'carbs.bayes' has no attribute {name!r}")
