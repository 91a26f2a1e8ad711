"""Sweep definitions: good ones load into a search space, bad ones fail naming file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from carbs.errors import SpecError
from experiments.spec import load_spec, parse_spec

SWEEPS = Path(__file__).resolve().parents[2] / "experiments" / "sweeps"

GOOD = """
name: t
search_space:
  d_model: {kind: log, min: 64, max: 512, multiple_of: 64, scales_cost: true}
  n_heads: {kind: categorical, choices: [2, 4, 8]}
  learning_rate: {kind: log, min: 1.0e-4, max: 1.0e-2, center: 1.0e-3}
  warmup_frac: {kind: logit, min: 0.01, max: 0.5}
  n_layers: {kind: int, min: 1, max: 8, scales_cost: true}
constraints: ["d_model % n_heads == 0"]
target: {flops: 1.0e+21}
"""


@pytest.mark.parametrize("path", sorted(SWEEPS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_sweep_file_is_valid(path: Path) -> None:
    spec = load_spec(path)
    space = spec.space()
    assert space.is_feasible(space.center()) or spec.constraints
    assert spec.target.flops > 0


def test_good_spec_builds_space_with_every_kind() -> None:
    spec = parse_spec(GOOD, "good.yaml")
    space = spec.space()
    kinds = {p.name: p.kind for p in space.params}
    assert kinds == {
        "d_model": "log",
        "n_heads": "categorical",
        "learning_rate": "log",
        "warmup_frac": "logit",
        "n_layers": "int",
    }
    assert space.param("d_model").from_basic(space.param("d_model").to_basic(200)) == 192
    assert space.is_feasible(
        {"d_model": 192, "n_heads": 4, "learning_rate": 1e-3, "warmup_frac": 0.1, "n_layers": 2}
    )
    assert not space.is_feasible(
        {"d_model": 100, "n_heads": 8, "learning_rate": 1e-3, "warmup_frac": 0.1, "n_layers": 2}
    )


@pytest.mark.parametrize(
    ("patch", "field", "hint"),
    [
        (
            "  learning_rate: {kind: log, min: 0, max: 1.0e-2}",
            "search_space.learning_rate",
            "min` > 0",
        ),
        (
            "  learning_rate: {kind: log, min: 1.0e-2, max: 1.0e-4}",
            "search_space.learning_rate",
            "must be below",
        ),
        (
            "  learning_rate: {kind: lgo, min: 1.0e-4, max: 1.0e-2}",
            "search_space.learning_rate.kind",
            "log",
        ),
        (
            "  learning_rate: {kind: log, min: 1.0e-4, max: 1.0e-2, center: 1.0}",
            "search_space.learning_rate",
            "outside",
        ),
        (
            "  learning_rate: {kind: log, min: 1.0e-4, max: 1.0e-2, typo: 1}",
            "search_space.learning_rate.typo",
            "not permitted",
        ),
    ],
)
def test_bad_parameter_names_file_field_and_fix(patch: str, field: str, hint: str) -> None:
    lines = [ln if not ln.startswith("  learning_rate:") else patch for ln in GOOD.splitlines()]
    with pytest.raises(SpecError) as err:
        parse_spec("\n".join(lines), "bad.yaml")
    msg = str(err.value)
    assert msg.startswith("bad.yaml: invalid sweep definition")
    assert field in msg
    assert hint in msg


def test_constraint_with_unknown_name_is_rejected() -> None:
    text = GOOD.replace('"d_model % n_heads == 0"', '"d_model % n_head == 0"')
    with pytest.raises(SpecError, match=r"- constraints.0: .*unknown names \['n_head'\]"):
        parse_spec(text, "bad.yaml")


def test_constraint_cannot_call_functions() -> None:
    text = GOOD.replace('"d_model % n_heads == 0"', "\"__import__('os').system('true')\"")
    with pytest.raises(SpecError, match="constraints"):
        parse_spec(text, "bad.yaml")


def test_missing_target_is_named() -> None:
    with pytest.raises(SpecError, match="- target: Field required"):
        parse_spec(GOOD.replace("target: {flops: 1.0e+21}", ""), "bad.yaml")


def test_sweep_without_a_cost_scaling_parameter_is_rejected() -> None:
    with pytest.raises(
        SpecError, match="- search_space: mark at least one parameter with `scales_cost: true`"
    ):
        parse_spec(GOOD.replace("scales_cost: true", "scales_cost: false"), "bad.yaml")


def test_callable_workload_must_import() -> None:
    text = GOOD + "workload: {kind: callable, function: 'no_such_module_xyz:fn'}\n"
    with pytest.raises(
        SpecError, match=r"workload.function: cannot import module 'no_such_module_xyz'"
    ):
        parse_spec(text, "bad.yaml")


def test_missing_file_and_bad_yaml_are_clear(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such sweep file"):
        load_spec(tmp_path / "nope.yaml")
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="broken.yaml: not valid YAML"):
        load_spec(bad)


def test_unknown_optimizer_and_setting_are_named() -> None:
    with pytest.raises(SpecError, match=r"- optimizer.name: unknown optimizer 'bayes'"):
        parse_spec(GOOD + "optimizer: {name: bayes}\n", "bad.yaml")
    with pytest.raises(SpecError, match=r"- optimizer.settings: unknown key\(s\) \['radius'\]"):
        parse_spec(GOOD + "optimizer: {name: carbs, settings: {radius: 2}}\n", "bad.yaml")


def test_size_function_must_import_and_is_loaded_for_the_fits() -> None:
    from experiments.large_run import load_size
    from models.accounting import param_counts
    from models.config import MoEConfig

    bad = GOOD + "workload: {size_function: 'no_such_module_xyz:count'}\n"
    with pytest.raises(SpecError, match=r"workload.size_function: cannot import module"):
        parse_spec(bad, "bad.yaml")
    good = GOOD + "workload: {size_function: 'models.accounting:active_params_for_params'}\n"
    size = load_size(parse_spec(good, "good.yaml"))
    assert size is not None
    params = {"d_model": 128, "n_layers": 2, "n_heads": 4, "n_experts": 4, "top_k": 2}
    counts = param_counts(MoEConfig.from_params(params))
    assert size(params) == counts.active_non_embedding < counts.active  # embeddings left out
    assert load_size(parse_spec(GOOD, "good.yaml")) is None
