import math

import pytest

from carbs.space import Constraint, Param, SearchSpace


@pytest.mark.parametrize(
    "param, value",
    [
        (Param("lr", "log", 1e-5, 1e-1), 3e-4),
        (Param("lr_scaled", "log", 1e-5, 1e-1, scale=2.0), 3e-4),
        (Param("wd", "linear", 0.0, 1.0, scale=0.1), 0.37),
        (Param("frac", "logit", 0.01, 0.99), 0.25),
        (Param("layers", "int", 1, 48), 7),
        (Param("d_model", "log", 64, 4096, multiple_of=64), 768),
        (Param("act", "categorical", choices=("relu", "gelu", "swiglu")), "gelu"),
    ],
)
def test_every_kind_round_trips_through_basic_space(param: Param, value) -> None:
    back = param.from_basic(param.to_basic(value))
    if isinstance(value, float):
        assert math.isclose(back, value, rel_tol=1e-9)
    else:
        assert back == value


def test_from_basic_rounds_and_clamps_to_legal_values() -> None:
    p = Param("d_model", "log", 64, 1024, multiple_of=64)
    assert p.from_basic(p.to_basic(100)) == 128
    assert p.from_basic(100.0) == 1024
    assert Param("n", "int", 1, 8).from_basic(-3.0) == 1


def test_scale_divides_log_coordinate() -> None:
    p = Param("x", "log", 1e-3, 1.0, scale=math.log(10))
    assert math.isclose(p.to_basic(0.01), -2.0)


def test_inactive_conditional_param_takes_its_centre() -> None:
    space = SearchSpace(
        (
            Param("n_experts", "int", 1, 8),
            Param("top_k", "int", 1, 8, center=2, condition="n_experts > 1"),
        )
    )
    assert space.canonical({"n_experts": 1, "top_k": 5}) == {"n_experts": 1, "top_k": 2}
    assert space.canonical({"n_experts": 4, "top_k": 5}) == {"n_experts": 4, "top_k": 5}
    assert not space.is_active("top_k", {"n_experts": 1, "top_k": 5})


def test_condition_grammar_is_checked_at_definition() -> None:
    with pytest.raises(ValueError, match="not allowed"):
        Param("x", "int", 1, 2, condition="__import__('os')")


def test_constraint_over_fixed_and_searched_values() -> None:
    space = SearchSpace(
        (Param("n_heads", "int", 1, 16),),
        constraints=(Constraint("d_model % n_heads == 0"),),
        fixed={"d_model": 96},
    )
    assert space.is_feasible({"n_heads": 12})
    assert not space.is_feasible({"n_heads": 7})
