"""carbs: cost-aware Bayesian hyperparameter and scaling-law search for MoE language models.

The Imbue-CARBS names (`CARBS`, `CARBSParams`, `LinearSpace`, `LogSpace`, `LogitSpace`,
`ObservationInParam`, `ParamDictType`, ...) are re-exported lazily from `carbs.utils` /
`carbs.compat`, so `from carbs import CARBS` works without making every `import carbs.space`
pay for BoTorch; `carbs.carbs` and `carbs.utils` are Imbue's module paths.
"""

from __future__ import annotations

from typing import Any

from carbs.compat_names import UTILS_NAMES

# Imbue's `carbs/__init__.py` is `from carbs.carbs import CARBS; from carbs.utils import *`:
# these are those names, each resolved from carbs.utils on first use.
_COMPAT = {"CARBS", *UTILS_NAMES}


def __getattr__(name: str) -> Any:
    if name in _COMPAT:
        if name == "CARBS":
            from carbs.compat import CARBS

            return CARBS
        from carbs import utils

        return getattr(utils, name)
    raise AttributeError(f"module 'carbs' has no attribute {name!r}")
