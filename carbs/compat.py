"""Drop-in replacement for Imbue's `carbs` package API (minus wandb and checkpoints).

Code written for Imbue's CARBS runs unchanged::

    from carbs.compat import CARBS, CARBSParams, LinearSpace, LogSpace, LogitSpace, Param
    from carbs.compat import ObservationInParam
    carbs = CARBS(CARBSParams(better_direction_sign=-1, is_wandb_logging_enabled=False), params)
    s = carbs.suggest().suggestion          # every param plus "suggestion_uuid"
    carbs.observe(ObservationInParam(input=s, output=loss, cost=seconds))

Spaces keep CARBS' basic coordinates (base-10 logs divided by `scale`), mapped onto
`carbs.space.Param` with an equivalent `scale`, so `initial_search_radius` means what it meant.
The optimizer behind it is `carbs.bayes.CarbsOptimizer`; its state is rebuilt from the
observations, so there is no pickled state, no wandb, and no checkpoint files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np
import torch

from carbs.bayes import CarbsOptimizer
from carbs.compat_groups import (
    add_dict_key_prefix,
    get_pareto_groups,
    get_pareto_groups_conservative,
    group_observations,
    observation_group_cost,
    observation_group_output,
    pareto_area_from_groups,
)
from carbs.optimizer import Observation
from carbs.space import Param as SpaceParam
from carbs.space import SearchSpace

SUGGESTION_ID_DICT_KEY = "suggestion_uuid"
ParamType = int | float | str | bool | Enum
ParamDictType = dict[str, ParamType]


class OutstandingSuggestionEstimatorEnum(Enum):
    MEAN = "MEAN"
    CONSTANT = "CONSTANT"
    THOMPSON = "THOMPSON"


class SuggestionRedistributionMethodEnum(Enum):
    NONE = "NONE"
    LOG_COST_CLAMPING = "LOG_COST_CLAMPING"


@dataclass
class RealNumberSpace:
    min: float = float("-inf")
    max: float = float("+inf")
    scale: float = 1.0
    is_integer: bool = False
    rounding_factor: int = 1

    def basic_from_param(self, value: Any) -> float:
        raise NotImplementedError

    def param_from_basic(self, value: float, is_rounded: bool = True) -> Any:
        raise NotImplementedError

    def _round(self, value: float) -> Any:
        if self.is_integer:
            return int(round(value / self.rounding_factor) * self.rounding_factor)
        return value

    def _kind_and_scale(self) -> tuple[str, float]:
        raise NotImplementedError

    def to_param(self, name: str, center: Any) -> SpaceParam:
        """The equivalent native parameter (same basic coordinate, same bounds and rounding)."""
        kind, scale = self._kind_and_scale()
        lo = None if math.isinf(self.min) or (kind != "linear" and self.min <= 0) else self.min
        hi = None if math.isinf(self.max) or (kind == "logit" and self.max >= 1) else self.max
        multiple = self.rounding_factor if self.is_integer and self.rounding_factor > 1 else None
        return SpaceParam(
            name=name,
            kind=kind,
            min=lo,
            max=hi,
            center=center,
            scale=scale,  # type: ignore[arg-type]
            integer=self.is_integer,
            multiple_of=multiple,
        )


@dataclass
class LinearSpace(RealNumberSpace):
    def basic_from_param(self, value: Any) -> float:
        return float(value) / self.scale

    def param_from_basic(self, value: float, is_rounded: bool = True) -> Any:
        v = value * self.scale
        return self._round(v) if is_rounded else v

    def _kind_and_scale(self) -> tuple[str, float]:
        return "linear", self.scale


@dataclass
class LogSpace(RealNumberSpace):
    min: float = 0.0
    base: int = 10

    def basic_from_param(self, value: Any) -> float:
        v = float(value)
        return float("-inf") if v == 0.0 else math.log(v, self.base) / self.scale

    def param_from_basic(self, value: float, is_rounded: bool = True) -> Any:
        v = self.base ** (value * self.scale)
        return self._round(v) if is_rounded else v

    def _kind_and_scale(self) -> tuple[str, float]:
        return "log", self.scale * math.log(self.base)


@dataclass
class LogitSpace(RealNumberSpace):
    min: float = 0.0
    max: float = 1.0

    def basic_from_param(self, value: Any) -> float:
        v = float(value)
        if v == 0.0:
            return float("-inf")
        if v == 1.0:
            return float("+inf")
        return math.log10(v / (1 - v)) / self.scale

    def param_from_basic(self, value: float, is_rounded: bool = True) -> Any:
        return 1 / (10 ** (-value * self.scale) + 1)

    def _kind_and_scale(self) -> tuple[str, float]:
        return "logit", self.scale * math.log(10)


@dataclass(frozen=True)
class Param:
    name: str
    space: RealNumberSpace
    search_center: float | int


@dataclass
class WandbLoggingParams:
    """Accepted for compatibility; nothing is sent anywhere."""

    project_name: str | None = None
    group_name: str | None = None
    run_name: str | None = None
    run_id: str | None = None
    is_suggestion_logged: bool = True
    is_observation_logged: bool = True
    is_search_space_logged: bool = True
    root_dir: str = "/mnt/private"


@dataclass
class CARBSParams:
    """CARBS' configuration. Wandb, checkpoint and S3 fields are accepted and ignored."""

    better_direction_sign: int = 1
    seed: int = 0
    num_random_samples: int = 4
    is_wandb_logging_enabled: bool = True
    wandb_params: WandbLoggingParams = field(default_factory=WandbLoggingParams)
    checkpoint_dir: str = "checkpoints/"
    s3_checkpoint_path: str = "s3://int8/checkpoints"
    is_saved_on_every_observation: bool = True
    initial_search_radius: float = 0.3
    exploration_bias: float = 1.0
    num_candidates_for_suggestion_per_dim: int = 100
    resample_frequency: int = 5
    max_suggestion_cost: float | None = None
    min_pareto_cost_fraction: float = 0.2
    is_pareto_group_selection_conservative: bool = True
    is_expected_improvement_pareto_value_clamped: bool = True
    is_expected_improvement_value_always_max: bool = False
    outstanding_suggestion_estimator: OutstandingSuggestionEstimatorEnum = (
        OutstandingSuggestionEstimatorEnum.THOMPSON
    )


@dataclass
class ObservationInParam:
    input: ParamDictType
    output: float
    cost: float = 1.0
    is_failure: bool = False


@dataclass
class ObservationInBasic:
    real_number_input: torch.Tensor
    output: float
    cost: float = 1.0
    suggestion_id: str | None = None


@dataclass
class SuggestionInBasic:
    real_number_input: torch.Tensor
    log_info: dict[str, float] = field(default_factory=dict)


@dataclass
class SuggestOutput:
    suggestion: ParamDictType
    log: dict[str, Any] = field(default_factory=dict)


@dataclass
class ObserveOutput:
    logs: dict[str, Any] = field(default_factory=dict)


def optimizer_settings(config: CARBSParams) -> dict[str, Any]:
    """`CarbsOptimizer` keywords equivalent to an Imbue `CARBSParams` (seed included)."""
    c = config
    return {
        "seed": c.seed,
        "search_radius": c.initial_search_radius,
        "num_random_samples": c.num_random_samples,
        "num_candidates_per_dim": c.num_candidates_for_suggestion_per_dim,
        "exploration_bias": c.exploration_bias,
        "resample_frequency": c.resample_frequency,
        "max_suggestion_cost": c.max_suggestion_cost,
        "min_pareto_cost_fraction": c.min_pareto_cost_fraction,
        "conservative_pareto": c.is_pareto_group_selection_conservative,
        "clamp_pareto_value": c.is_expected_improvement_pareto_value_clamped,
    }


class CARBS:
    """Imbue's `CARBS(config, params)` interface on top of `CarbsOptimizer`."""

    def __init__(self, config: CARBSParams, params: list[Param]) -> None:
        for p in params:
            if not isinstance(p.space, RealNumberSpace):
                raise TypeError(
                    f"param {p.name!r}: space must be LinearSpace, LogSpace or LogitSpace; for "
                    "categorical or conditional params use carbs.space with carbs.bayes directly"
                )
        self.config = config
        self.params = list(params)
        self.param_space_by_name = {p.name: p.space for p in params}
        self.success_observations: list[ObservationInBasic] = []
        self.failure_observations: list[ObservationInBasic] = []
        self._success_inputs: list[dict[str, Any]] = []  # each success's params, as given
        self.outstanding_suggestions: dict[str, SuggestionInBasic] = {}
        self._outstanding_params: dict[str, dict[str, Any]] = {}
        self._observations: list[Observation] = []
        self._centers = {p.name: p.search_center for p in params}
        self._optimizer = self._build()

    # ---- public API (as Imbue's) ------------------------------------------------------------
    def suggest(
        self, suggestion_id: str | None = None, is_suggestion_remembered: bool = True
    ) -> SuggestOutput:
        (s,) = self._optimizer.suggest(1, pending=list(self._outstanding_params.values()))
        self._optimizer.outstanding.clear()  # this class keeps the outstanding set
        info = self._optimizer.last_info[0] if self._optimizer.last_info else {}
        suggestion: ParamDictType = dict(s.params)
        if is_suggestion_remembered:
            sid = suggestion_id or s.suggestion_id
            suggestion[SUGGESTION_ID_DICT_KEY] = sid
            self.outstanding_suggestions[sid] = SuggestionInBasic(self._basic(s.params), info)
            self._outstanding_params[sid] = dict(s.params)
        return SuggestOutput(suggestion=suggestion, log=dict(info))

    def observe(self, new_observation_in_param: ObservationInParam) -> ObserveOutput:
        self.forget_suggestion(new_observation_in_param.input)
        self._add_observation(new_observation_in_param)
        return ObserveOutput(logs=self._logs(new_observation_in_param))

    def forget_suggestion(self, suggestion_to_forget: ParamDictType) -> None:
        sid = suggestion_to_forget.get(SUGGESTION_ID_DICT_KEY)
        if sid is not None:
            self.outstanding_suggestions.pop(str(sid), None)
            self._outstanding_params.pop(str(sid), None)

    def initialize_from_observations(self, observations: list[ObservationInParam]) -> ObserveOutput:
        for o in observations:
            self._add_observation(o)
        if observations:
            best = max(observations, key=lambda o: o.output * self.config.better_direction_sign)
            self.set_search_center(best.input)
        return ObserveOutput(logs={})

    def set_search_center(self, input_in_param: ParamDictType) -> None:
        self._centers = {p.name: input_in_param[p.name] for p in self.params}
        self._optimizer = self._build()
        for o in self._observations:
            self._optimizer.observe(o)

    @property
    def observation_count(self) -> int:
        return len(self.success_observations) + len(self.failure_observations)

    @property
    def cumulative_cost(self) -> float:
        return sum(o.cost for o in self.success_observations)

    # ---- internals ----------------------------------------------------------------------------
    def _build(self) -> CarbsOptimizer:
        space = SearchSpace(
            tuple(p.space.to_param(p.name, self._centers[p.name]) for p in self.params)
        )
        return CarbsOptimizer(space, **optimizer_settings(self.config))

    def _basic(self, values: ParamDictType) -> torch.Tensor:
        return torch.tensor(
            [self.param_space_by_name[p.name].basic_from_param(values[p.name]) for p in self.params]
        )

    def _add_observation(self, obs: ObservationInParam) -> None:
        values = {p.name: obs.input[p.name] for p in self.params}
        sid = obs.input.get(SUGGESTION_ID_DICT_KEY)
        output = float(obs.output)
        failed = bool(obs.is_failure) or not math.isfinite(output)
        native = Observation(
            params=values,
            cost=float(obs.cost),
            loss=None if failed else -self.config.better_direction_sign * output,
            failed=failed,
            suggestion_id=None if sid is None else str(sid),
        )
        self._observations.append(native)
        self._optimizer.observe(native)
        basic = ObservationInBasic(
            self._basic(values), output, float(obs.cost), None if sid is None else str(sid)
        )
        (self.failure_observations if failed else self.success_observations).append(basic)
        if not failed:
            self._success_inputs.append(values)

    def _get_pareto_groups(self, is_conservative: bool = False) -> tuple[Any, ...]:
        """The successes' Pareto groups, as Imbue's method of this name gives them."""
        if not self.success_observations:
            return ()
        pick = get_pareto_groups_conservative if is_conservative else get_pareto_groups
        return pick(
            group_observations(self.success_observations),
            self.config.min_pareto_cost_fraction,
            self.config.better_direction_sign,
        )

    def _logs(self, observation: ObservationInParam) -> dict[str, Any]:
        """The keys Imbue's `observe().logs` has (minus the wandb plot), so dashboards and
        notebooks written against it read the same names."""
        logs: dict[str, Any] = {
            "observation_count": self.observation_count,
            "cumulative_cost": self.cumulative_cost,
            "failed_observation_count": len(self.failure_observations),
        }
        logs.update(add_dict_key_prefix(observation.input, "observation/"))
        logs["observation/is_failure"] = 1 if observation.is_failure else 0
        if not observation.is_failure:
            logs["observation/output"] = observation.output
            logs["observation/cost"] = observation.cost
        if not self.success_observations:
            return logs
        sign = self.config.better_direction_sign
        i_best = max(
            range(len(self.success_observations)),
            key=lambda i: self.success_observations[i].output * sign,
        )
        best = self.success_observations[i_best]
        logs.update(add_dict_key_prefix(self._success_inputs[i_best], "best_observation/"))
        logs["best_observation/output"] = best.output
        logs["best_observation/cost"] = best.cost
        groups = self._get_pareto_groups(self.config.is_pareto_group_selection_conservative)
        logs["pareto_group_count"] = len(groups)
        logs["pareto_area"] = pareto_area_from_groups(groups)
        repeated = [g for g in group_observations(self.success_observations) if len(g) > 1]
        if repeated:
            top = max(repeated, key=lambda g: observation_group_output(g) * sign)
            first = next(
                i for i, o in enumerate(self.success_observations) if any(o is x for x in top)
            )
            logs.update(
                add_dict_key_prefix(self._success_inputs[first], "best_resampled_observation/")
            )
            outputs = [o.output for o in top]
            logs["best_resampled_observation/output_mean"] = float(np.mean(outputs))
            logs["best_resampled_observation/output_std_dev"] = float(np.std(outputs))
            logs["best_resampled_observation/cost_mean"] = observation_group_cost(top)
            logs["best_resampled_observation/sample_count"] = len(top)
        return logs


__all__ = [
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
    "ParamDictType",
    "ParamType",
    "RealNumberSpace",
    "SUGGESTION_ID_DICT_KEY",
    "SuggestionInBasic",
    "SuggestionRedistributionMethodEnum",
    "SuggestOutput",
    "WandbLoggingParams",
]
