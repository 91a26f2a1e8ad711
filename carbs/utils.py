"""`from carbs.utils import ...`: Imbue's module of spaces, params, observations and Pareto helpers.

Why: Imbue's test file, README and notebook import `CARBSParams`, `LinearSpace`, `LogSpace`,
`Param`, `ParamDictType`, ... from here (and `from carbs import *` re-exports this module); the
names are the drop-in's in `carbs.compat` and `carbs.compat_groups`.
"""

from carbs.compat import (  # noqa: F401 - re-exported through __all__
    SUGGESTION_ID_DICT_KEY,
    CARBSParams,
    LinearSpace,
    LogitSpace,
    LogSpace,
    ObservationInBasic,
    ObservationInParam,
    ObserveOutput,
    OutstandingSuggestionEstimatorEnum,
    Param,
    ParamDictType,
    ParamType,
    RealNumberSpace,
    SuggestionInBasic,
    SuggestionRedistributionMethodEnum,
    SuggestOutput,
    WandbLoggingParams,
)
from carbs.compat_groups import (  # noqa: F401 - re-exported through __all__
    ObservationGroup,
    add_dict_key_prefix,
    get_pareto_groups,
    get_pareto_groups_conservative,
    group_observations,
    observation_group_cost,
    observation_group_output,
    pareto_area_from_groups,
)
from carbs.compat_names import UTILS_NAMES

__all__ = list(UTILS_NAMES)  # every name imported above (tests check each resolves)
