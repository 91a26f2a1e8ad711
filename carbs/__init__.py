"""carbs: cost-aware Bayesian hyperparameter and scaling-law search for MoE language models.

The Imbue-CARBS compatibility names (`CARBS`, `CARBSParams`, `LinearSpace`, `LogSpace`,
`LogitSpace`, `ObservationInParam`, ...) are re-exported lazily from `carbs.compat`, so
`from carbs import CARBS` works without making every `import carbs.space` pay for BoTorch.
"""

from __future__ import annotations

from typing import Any

_COMPAT = {
    "CARBS",
    "CARBSParams",
    "LinearSpace",
    "LogSpace",
    "LogitSpace",
    "ObservationInBasic",
    "ObservationInParam",
    "ObserveOutput",
    "OutstandingSuggestionEstimatorEnum",
    "Param",
    "SUGGESTION_ID_DICT_KEY",
    "SuggestionInBasic",
    "SuggestOutput",
    "WandbLoggingParams",
}


def __getattr__(name: str) -> Any:
    if name in _COMPAT:
        from carbs import compat

        return getattr(compat, name)
    raise AttributeError(f"module 'carbs' has no attribute {name!r}")
