"""Code written for Imbue's CARBS runs unchanged against carbs.compat."""

import math
import subprocess
import sys
from pathlib import Path

from carbs.compat import (
    CARBS,
    CARBSParams,
    LinearSpace,
    LogitSpace,
    LogSpace,
    ObservationInParam,
    Param,
)


def imbue_style_params() -> list[Param]:
    return [
        Param(name="learning_rate", space=LogSpace(scale=0.5), search_center=1e-3),
        Param(
            name="epochs",
            space=LinearSpace(min=1, max=64, scale=8, is_integer=True),
            search_center=8,
        ),
        Param(name="dropout", space=LogitSpace(), search_center=0.1),
        Param(
            name="width",
            space=LogSpace(min=16, max=1024, is_integer=True, rounding_factor=16),
            search_center=128,
        ),
    ]


def train(s: dict) -> tuple[float, float, bool]:
    if s["learning_rate"] > 0.3:
        return float("nan"), 1.0, True
    loss = (math.log10(s["learning_rate"]) + 2.5) ** 2 + 10 / s["width"] + s["dropout"]
    return loss, s["epochs"] * s["width"], False


def config(**kw) -> CARBSParams:
    return CARBSParams(
        better_direction_sign=-1,
        is_wandb_logging_enabled=False,
        num_candidates_for_suggestion_per_dim=10,
        **kw,
    )


def test_imbue_loop_runs_and_suggestions_carry_every_param_and_uuid() -> None:
    carbs = CARBS(config(num_random_samples=3), imbue_style_params())
    for _ in range(5):
        suggestion = carbs.suggest().suggestion
        assert set(suggestion) == {"learning_rate", "epochs", "dropout", "width", "suggestion_uuid"}
        assert suggestion["suggestion_uuid"] in carbs.outstanding_suggestions
        assert isinstance(suggestion["epochs"], int) and 1 <= suggestion["epochs"] <= 64
        assert suggestion["width"] % 16 == 0 and 0 < suggestion["dropout"] < 1
        loss, cost, failed = train(suggestion)
        carbs.observe(
            ObservationInParam(input=suggestion, output=loss, cost=cost, is_failure=failed)
        )
        assert suggestion["suggestion_uuid"] not in carbs.outstanding_suggestions
    assert len(carbs.success_observations) + len(carbs.failure_observations) == 5
    assert carbs.success_observations[0].real_number_input.shape == (4,)


def test_nan_output_counts_as_failure_and_forget_drops_outstanding() -> None:
    carbs = CARBS(config(), imbue_style_params())
    s = carbs.suggest().suggestion
    carbs.observe(ObservationInParam(input=s, output=float("nan"), cost=1.0))
    assert len(carbs.failure_observations) == 1 and not carbs.success_observations
    pending = carbs.suggest().suggestion
    carbs.forget_suggestion(pending)
    assert carbs.outstanding_suggestions == {}


def test_log_space_keeps_carbs_basic_coordinates() -> None:
    space = LogSpace(scale=0.5)
    native = space.to_param("lr", 1e-3)
    assert math.isclose(native.to_basic(1e-3), space.basic_from_param(1e-3))
    assert math.isclose(native.from_basic(space.basic_from_param(3e-4)), 3e-4)


def test_names_are_reexported_from_the_package() -> None:
    # a subprocess: under pytest, tests/carbs can shadow the package as a namespace package
    code = "from carbs import CARBS, CARBSParams; import carbs.compat as c; assert CARBS is c.CARBS"
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
