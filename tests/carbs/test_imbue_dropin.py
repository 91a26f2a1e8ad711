"""The imports and calls of Imbue's own `carbs/test_carbs.py`, README example and
`carbs_demo.ipynb`, made against this package (minus wandb), so code written for Imbue's CARBS
runs unchanged. Imbue's files themselves cannot be fetched in CI; these mirror them line for line."""

import math

import numpy as np
import pytest

from carbs import (  # the notebook's and the README's imports
    CARBS,
    CARBSParams,
    LinearSpace,
    LogitSpace,
    LogSpace,
    ObservationInParam,
    Param,
    ParamDictType,
)
from carbs.carbs import CARBS as CARBS_FROM_MODULE  # test_carbs.py's imports
from carbs.utils import CARBSParams as UtilsCARBSParams
from carbs.utils import LinearSpace as UtilsLinearSpace
from carbs.utils import LogSpace as UtilsLogSpace
from carbs.utils import Param as UtilsParam


def test_module_paths_name_the_same_objects() -> None:
    assert CARBS_FROM_MODULE is CARBS
    assert UtilsCARBSParams is CARBSParams and UtilsParam is Param
    assert UtilsLinearSpace is LinearSpace and UtilsLogSpace is LogSpace
    import carbs
    import carbs.utils

    for name in carbs.utils.__all__:  # `from carbs.utils import *` is what Imbue's carbs re-exports
        assert getattr(carbs, name) is getattr(carbs.utils, name), name


# ---- test_carbs.py, fixture for fixture and test for test --------------------------------------
@pytest.fixture
def carbs_config() -> CARBSParams:
    return CARBSParams(is_wandb_logging_enabled=False, is_saved_on_every_observation=False)


@pytest.fixture
def params() -> list[Param]:
    return [
        UtilsParam("p1", UtilsLogSpace(scale=1), 1e-2),
        UtilsParam("p2", UtilsLinearSpace(scale=2), 0),
        UtilsParam("p3", LogitSpace(scale=0.5), 0.5),
    ]


@pytest.fixture
def carbs_instance(carbs_config: CARBSParams, params: list[Param]) -> CARBS:
    return CARBS_FROM_MODULE(carbs_config, params)


def test_suggest_one(carbs_instance: CARBS) -> None:
    start_suggestions = len(carbs_instance.outstanding_suggestions)
    suggestion = carbs_instance.suggest()
    assert len(carbs_instance.outstanding_suggestions) == start_suggestions + 1
    assert suggestion is not None
    assert "suggestion_uuid" in suggestion.suggestion
    for param in carbs_instance.params:
        assert param.name in suggestion.suggestion


def test_suggest_observe_ten(carbs_instance: CARBS) -> None:
    start_suggestions = len(carbs_instance.outstanding_suggestions)
    start_success_observations = len(carbs_instance.success_observations)
    for i in range(10):
        suggestion = carbs_instance.suggest()
        observation = ObservationInParam(input=suggestion.suggestion, output=i, cost=i + 1)
        carbs_instance.observe(observation)
    assert len(carbs_instance.outstanding_suggestions) == start_suggestions
    assert len(carbs_instance.success_observations) == start_success_observations + 10


def test_observe(carbs_instance: CARBS) -> None:
    start_success_obs = len(carbs_instance.success_observations)
    start_failure_obs = len(carbs_instance.failure_observations)
    centre = {x.name: x.search_center for x in carbs_instance.params}
    carbs_instance.observe(ObservationInParam(input=centre, output=1, cost=1))
    carbs_instance.observe(ObservationInParam(input=centre, output=1, cost=1, is_failure=True))
    assert len(carbs_instance.success_observations) == start_success_obs + 1
    assert len(carbs_instance.failure_observations) == start_failure_obs + 1


def test_forget(carbs_instance: CARBS) -> None:
    start_suggestions = len(carbs_instance.outstanding_suggestions)
    suggestion = carbs_instance.suggest()
    carbs_instance.forget_suggestion(suggestion.suggestion)
    assert len(carbs_instance.outstanding_suggestions) == start_suggestions


# ---- the README example and the demo notebook's loop -------------------------------------------
def run_test_fn(input_in_param: ParamDictType) -> float:
    # the notebook's: a noisy function minimized at lr=1e-3, max epochs
    return (math.log10(input_in_param["learning_rate"]) + 3) ** 2 * 512 / input_in_param[
        "epochs"
    ] + np.random.uniform() * 0.1


def test_notebook_loop_reads_every_log_key_it_prints() -> None:
    np.random.seed(0)
    param_spaces = [
        Param(name="learning_rate", space=LogSpace(scale=0.5), search_center=1e-4),
        Param(name="momentum", space=LogitSpace(), search_center=0.9),
        Param(name="epochs", space=LogSpace(is_integer=True, min=2, max=512), search_center=10),
    ]
    carbs_params = CARBSParams(
        better_direction_sign=-1, is_wandb_logging_enabled=False, resample_frequency=0
    )
    carbs = CARBS(carbs_params, param_spaces)
    outputs = []
    for i in range(10):
        suggestion = carbs.suggest().suggestion
        observed_value = run_test_fn(suggestion)
        outputs.append(observed_value)
        obs_out = carbs.observe(
            ObservationInParam(input=suggestion, output=observed_value, cost=suggestion["epochs"])
        )
        logs = obs_out.logs
        # the notebook's f-strings, verbatim formats
        line = (
            f"Observation {logs['observation_count']} "
            f"Observed lr={logs['observation/learning_rate']:.2e}, "
            f"epochs={logs['observation/epochs']}, "
            f"output {logs['observation/output']:.3f} "
            f"Best lr={logs['best_observation/learning_rate']:.2e}, "
            f"epochs={logs['best_observation/epochs']}, "
            f"output {logs['best_observation/output']:.3f}"
        )
        assert line.startswith(f"Observation {i + 1} ")
        assert logs["observation/learning_rate"] == suggestion["learning_rate"]
        assert logs["observation/output"] == observed_value
        assert logs["best_observation/output"] == min(outputs)
        assert logs["pareto_group_count"] >= 1 and math.isfinite(logs["pareto_area"])
    assert isinstance(logs["best_observation/epochs"], int)
    assert 2 <= logs["best_observation/epochs"] <= 512


def test_pareto_logs_match_imbue_grouping_and_area() -> None:
    """Hand-checked front: costs 1, 2, 3 with outputs 5, 4, 4.5 (minimising): with
    min_pareto_cost_fraction 0 the front is the first two, area (2 - 1) x 5."""
    carbs = CARBS(
        CARBSParams(
            better_direction_sign=-1,
            is_wandb_logging_enabled=False,
            min_pareto_cost_fraction=0.0,
            is_pareto_group_selection_conservative=False,
        ),
        [Param(name="x", space=LinearSpace(scale=1.0), search_center=0.0)],
    )
    for x, out, cost in [(0.0, 5.0, 1.0), (1.0, 4.0, 2.0), (2.0, 4.5, 3.0)]:
        logs = carbs.observe(ObservationInParam(input={"x": x}, output=out, cost=cost)).logs
    assert logs["pareto_group_count"] == 2
    assert logs["pareto_area"] == pytest.approx(5.0)
    assert logs["best_observation/x"] == 1.0 and logs["best_observation/cost"] == 2.0
    # a repeat of the best config shows up as Imbue's best_resampled_observation entries
    logs = carbs.observe(ObservationInParam(input={"x": 1.0}, output=4.2, cost=2.0)).logs
    assert logs["best_resampled_observation/sample_count"] == 2
    assert logs["best_resampled_observation/output_mean"] == pytest.approx(4.1)
    assert logs["best_resampled_observation/x"] == 1.0
    failed = carbs.observe(
        ObservationInParam(input={"x": 3.0}, output=float("nan"), cost=1.0, is_failure=True)
    ).logs
    assert failed["observation/is_failure"] == 1 and "observation/output" not in failed
    assert failed["failed_observation_count"] == 1
