"""The names of Imbue's `carbs.utils` (what `from carbs.utils import *` gives), in one place.

Why a module without imports: `carbs/__init__.py` re-exports them lazily (so `import carbs.space`
does not pay for BoTorch) and `carbs.utils` defines `__all__` from the same list.
"""

UTILS_NAMES: tuple[str, ...] = (
    "CARBSParams",
    "LinearSpace",
    "LogSpace",
    "LogitSpace",
    "ObservationGroup",
    "ObservationInBasic",
    "ObservationInParam",
    "ObserveOutput",
    "OutstandingSuggestionEstimatorEnum",
    "Param",
    "ParamDictType",
    "ParamType",
    "RealNumberSpace",
    "SUGGESTION_ID_DICT_KEY",
    "SuggestionInBasic",
    "SuggestionRedistributionMethodEnum",
    "SuggestOutput",
    "WandbLoggingParams",
    "add_dict_key_prefix",
    "get_pareto_groups",
    "get_pareto_groups_conservative",
    "group_observations",
    "observation_group_cost",
    "observation_group_output",
    "pareto_area_from_groups",
)
