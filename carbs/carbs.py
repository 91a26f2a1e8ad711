"""`from carbs.carbs import CARBS`: Imbue's module path for the optimizer class.

Why: code and tests written for Imbue's package import CARBS from here; the class is the drop-in
in `carbs.compat`, backed by `carbs.bayes.CarbsOptimizer`.
"""

from carbs.compat import CARBS

__all__ = ["CARBS"]
