"""Specs that used to crash the loader or slip through it invalid: each is refused, quickly,
with the field and the fix named; the limits do not refuse ordinary YAML."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from carbs.errors import SpecError
from experiments.entrypoints import LOCAL, SERVICE, EntryPointPolicy
from experiments.spec import load_spec, parse_spec
from experiments.spec_yaml import YamlRefused, load_yaml

SWEEPS = Path(__file__).resolve().parents[2] / "experiments" / "sweeps"
TOY = yaml.safe_load((SWEEPS / "toy_chinchilla.yaml").read_text())


def _with(**patch: Any) -> str:
    """The toy spec with dotted-path fields replaced."""
    data = copy.deepcopy(TOY)
    for path, value in patch.items():
        cur = data
        *parents, last = path.split("__")
        for p in parents:
            cur = cur.setdefault(p, {})
        cur[last] = value
    return yaml.safe_dump(data, sort_keys=False)


BOMB = "".join(
    f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9) if i else ', '.join(['x'] * 9)}]\n"
    for i in range(9)
)


@pytest.mark.parametrize(
    ("text", "field", "fix"),
    [
        (_with(search_space__n_params__max=float("inf")), "search_space.n_params.max", "finite"),
        (_with(workload__num_cpus=float("inf")), "workload.num_cpus", "finite"),
        (_with(target__flops=float("nan")), "target.flops", "finite"),
        (
            _with(search_space__k={"kind": "int", "min": 0.2, "max": 0.8}),
            "search_space.k",
            "no integer lies",
        ),
        (
            _with(search_space__d={"kind": "log", "min": 64, "max": 256, "multiple_of": 10**9}),
            "search_space.d",
            "multiple_of",
        ),
        (_with(seed=-1), "seed", "greater than or equal to 0"),
        (_with(seed=2**40), "seed", "less than"),
        (_with(search_space__n_params__center=[1, 2]), "search_space.n_params", "finite number"),
        (_with(search_space__n_params__min=[1]), "search_space.n_params.min", "valid number"),
        (_with(constraints=[""]), "constraints.0", "empty"),
        (_with(constraints=["n_params >"]), "constraints.0", "not a valid expression"),
        (_with(constraints=["9**9**9 > n_params"]), "constraints.0", "exponent"),
        (_with(constraints=["(" * 300 + "n_params" + ")" * 300 + " > 1"]), "constraints.0", "long"),
        (_with(constraints=["not " * 50_000 + "n_params"]), "constraints.0", "long"),
        (_with(constraints=["n_params > 'a'"]), "constraints.0", "search centre"),
        (_with(workload__function=".toy:fn"), "workload.function", "package.module:function"),
        (_with(workload__function="toy"), "workload.function", "package.module:function"),
        (
            _with(workload__fixed={"h": {"()": "subprocess.getoutput", "cmd": "true"}}),
            "workload.fixed.h",
            "'()' is not allowed",
        ),
        (_with(workload__fixed={"_target_": "os.system"}), "workload.fixed", "not allowed"),
        (
            _with(optimizer={"name": "carbs", "settings": {"fit_maxiter": "x"}}),
            "settings.fit_maxiter",
            "integer",
        ),
        (
            _with(optimizer={"name": "carbs", "settings": {"num_candidates_per_dim": 10**12}}),
            "settings.num_candidates_per_dim",
            "outside",
        ),
        (_with(optimizer={"name": "random", "settings": {"radius": 1}}), "settings", "takes no"),
        (_with(budget={"max_trials": 10**18}), "budget.max_trials", "less than or equal"),
        (
            _with(search_space__c={"kind": "categorical", "choices": [1, 1]}),
            "search_space.c",
            "twice",
        ),
        ("seed: " + "9" * 5001 + "\n", "a number has too many digits", "digits"),
        (yaml.safe_dump(TOY) + "seed: 3\n", "key 'seed' is given twice", "keep one"),
        ("a: " + "[" * 1000 + "]" * 1000, "nest", "levels"),
        (BOMB, "expands to more than", "write it out"),
        ("a: &a [*a]\n", "alias refers to a value that contains it", "alias"),
        ("just a string\n", "expected a mapping", "mapping"),
        (
            _with(constraints=["n_params < 0"]),
            "constraints: no configuration of the search space satisfies every constraint",
            "relax a constraint",
        ),
    ],
)
def test_bad_specs_are_refused_naming_the_field_and_the_fix(
    text: str, field: str, fix: str
) -> None:
    start = time.perf_counter()
    with pytest.raises(SpecError) as err:
        parse_spec(text, "bad.yaml")
    assert time.perf_counter() - start < 1.0
    msg = str(err.value)
    assert msg.startswith("bad.yaml: ")
    assert field in msg and fix in msg, msg


def test_non_utf8_and_unreadable_files_are_named(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(yaml.safe_dump(TOY).encode() + b"# caf\xe9\n")
    with pytest.raises(SpecError, match=r"latin1.yaml: not UTF-8 text \(byte \d+"):
        load_spec(path)
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * 300_000)
    with pytest.raises(SpecError, match="over 256000 bytes"):
        load_spec(big)


def test_ordinary_yaml_features_still_load() -> None:
    data = load_yaml("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\nlist: [*b, *b]\n")
    assert data == {"base": {"x": 1}, "other": {"x": 1, "y": 2}, "list": [{"x": 1}, {"x": 1}]}
    with pytest.raises(YamlRefused, match="twice"):
        load_yaml("a: 1\nb: {c: 1, c: 2}\n")


def test_every_shipped_spec_passes_the_service_allow_list() -> None:
    for path in sorted(SWEEPS.glob("*.yaml")):
        parse_spec(path.read_text(), str(path), entrypoints=SERVICE)


@pytest.mark.parametrize("field", ["function", "cost_function", "size_function"])
def test_the_service_refuses_unlisted_entry_points_without_importing(field: str) -> None:
    import sys

    patch = {f"workload__{field}": "json.tool:main"}  # importable, harmless, not allowed
    sys.modules.pop("json.tool", None)
    with pytest.raises(SpecError, match=rf"workload.{field}: 'json.tool:main' is not allowed"):
        parse_spec(_with(**patch), "svc", entrypoints=SERVICE)
    assert "json.tool" not in sys.modules  # refused from the name alone
    parse_spec(_with(**patch), "local", entrypoints=LOCAL)  # your own machine: allowed
    wide = EntryPointPolicy.allow_only([*SERVICE.allowed, "json.tool:*"])  # type: ignore[misc]
    parse_spec(_with(**patch), "svc", entrypoints=wide)


def test_moe_settings_are_checked_against_the_trainer() -> None:
    moe = yaml.safe_load((SWEEPS / "moe_tiny.yaml").read_text())
    typo = copy.deepcopy(moe)
    typo["workload"]["fixed"]["n_head"] = 4
    with pytest.raises(
        SpecError, match=r"workload.fixed: \['n_head'\] are not settings of the moe"
    ):
        parse_spec(yaml.safe_dump(typo), "moe.yaml")
    broken = copy.deepcopy(moe)
    broken["workload"]["fixed"]["n_kv_heads"] = -3
    with pytest.raises(
        SpecError, match=r"workload: the search centre .*n_kv_heads=-3 must be >= 1"
    ):
        parse_spec(yaml.safe_dump(broken), "moe.yaml")


def test_the_built_in_moe_workload_can_be_switched_off_by_the_operator() -> None:
    spec = (SWEEPS / "moe_tiny.yaml").read_text()
    only_toy = EntryPointPolicy.allow_only(["experiments.toy_objectives:*"])
    with pytest.raises(
        SpecError, match="workload.kind: 'models.workload:train_moe' is not allowed"
    ):
        parse_spec(spec, "svc", entrypoints=only_toy)
