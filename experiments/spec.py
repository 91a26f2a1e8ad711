"""The sweep definition: a YAML file validated with pydantic before anything runs.

Why pydantic: every error names the file, the field path and what was expected, so a researcher
fixes a typo in seconds instead of losing a trial to it.
"""

from __future__ import annotations

import importlib
import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from carbs.errors import SpecError
from carbs.space import Constraint, Param, SearchSpace

DEFAULT_STORAGE = "sqlite:///carbs.db"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ParamSpec(_Strict):
    """One searched parameter. `center` is the search centre (the prior's mode)."""

    kind: Literal["log", "linear", "logit", "int", "categorical"]
    min: float | None = None
    max: float | None = None
    center: Any = None
    scale: float = Field(
        1.0, gt=0, description="linear kinds: value change per unit of search step"
    )
    integer: bool = False
    multiple_of: int | None = Field(None, gt=0)
    choices: list[Any] | None = None
    scales_cost: bool = False

    @model_validator(mode="after")
    def _check_bounds(self) -> ParamSpec:
        if self.kind == "categorical":
            if not self.choices:
                raise ValueError("a categorical parameter needs a non-empty `choices` list")
            if self.center is not None and self.center not in self.choices:
                raise ValueError(f"center {self.center!r} is not one of choices {self.choices}")
            return self
        if self.min is None or self.max is None:
            raise ValueError(f"a {self.kind} parameter needs both `min` and `max`")
        if not self.min < self.max:
            raise ValueError(f"`min` ({self.min}) must be below `max` ({self.max})")
        if self.kind == "log" and self.min <= 0:
            raise ValueError("a log parameter needs `min` > 0 (use kind: linear for signed values)")
        if self.kind == "logit" and not (0 < self.min and self.max < 1):
            raise ValueError("a logit parameter needs 0 < min < max < 1")
        if self.center is not None:
            c = float(self.center)
            if not self.min <= c <= self.max:
                raise ValueError(f"center {c} is outside [min, max] = [{self.min}, {self.max}]")
        return self

    def to_param(self, name: str) -> Param:
        return Param(
            name=name,
            kind=self.kind,
            min=self.min,
            max=self.max,
            center=self.center,
            scale=self.scale,
            integer=self.integer,
            multiple_of=self.multiple_of,
            choices=tuple(self.choices or ()),
            scales_cost=self.scales_cost,
        )


class WorkloadSpec(_Strict):
    """What a trial runs: the built-in MoE trainer or any importable `module:function`.

    A callable takes the params dict (and optionally a `carbs.trial.TrialContext`) and returns a
    dict with at least `loss` and `cost`.
    """

    kind: Literal["moe", "callable"] = "moe"
    function: str | None = Field(None, description="module:function, for kind: callable")
    fixed: dict[str, Any] = Field(
        default_factory=dict, description="constants passed to every trial"
    )
    num_cpus: float = Field(1.0, gt=0)
    num_gpus: float | Literal["auto"] = Field(
        "auto", description="GPUs per trial; auto: 1 when the Ray cluster has a GPU, else 0"
    )
    cost_function: str | None = Field(
        None, description="module:function pricing a params dict in FLOPs before it runs"
    )
    size_function: str | None = Field(
        None,
        description="module:function counting the parameters a config's loss scales with "
        "(e.g. models.accounting:active_params_for_params); the scaling fits take it as N "
        "instead of FLOPs / (6 tokens)",
    )
    memory_gb: float | None = Field(None, gt=0)
    timeout_s: float | None = Field(None, gt=0, description="per-trial wall-clock limit")

    @model_validator(mode="after")
    def _check_function(self) -> WorkloadSpec:
        if self.kind == "callable":
            if not self.function or ":" not in self.function:
                raise ValueError("kind: callable needs `function: package.module:function_name`")
        elif self.function is not None:
            raise ValueError("`function` is only used with kind: callable")
        return self

    @field_validator("num_gpus")
    @classmethod
    def _non_negative(cls, v: float | str) -> float | str:
        if not isinstance(v, str) and v < 0:
            raise ValueError("num_gpus must be >= 0 or 'auto'")
        return v

    @property
    def cost_entrypoint(self) -> str | None:
        if self.cost_function:
            return self.cost_function
        return "models.accounting:training_flops_for_params" if self.kind == "moe" else None

    @property
    def entrypoint(self) -> str:
        return self.function if self.kind == "callable" else "models.workload:train_moe"

    def load(self) -> Any:
        """Import the workload callable; raises ValueError naming what is missing."""
        return import_callable(self.entrypoint)


def import_callable(entrypoint: str) -> Any:
    """Import `package.module:function`; ValueError says which part is missing."""
    module_name, _, attr = entrypoint.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r}: {exc}") from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ValueError(f"module {module_name!r} has no callable {attr!r}")
    return fn


class ObjectiveSpec(_Strict):
    metric: str = "val_loss"
    direction: Literal["minimize"] = "minimize"


class BudgetSpec(_Strict):
    max_trials: int = Field(20, gt=0)
    max_total_cost: float | None = Field(
        None, gt=0, description="total training FLOPs of all trials"
    )
    max_cost_per_trial: float | None = Field(
        None, gt=0, description="FLOPs; costlier suggestions are masked"
    )
    parallel_trials: int = Field(2, gt=0)
    max_retries: int = Field(2, ge=0, description="retries of infrastructure failures per trial")


class TargetSpec(_Strict):
    flops: float = Field(..., gt=0, description="compute budget of the large run, in FLOPs")


class OptimizerSpec(_Strict):
    name: str | None = Field(None, description="registered optimizer; default: carbs")
    settings: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_optimizer(self) -> OptimizerSpec:
        from carbs import registry

        name = self.name or registry.DEFAULT_OPTIMIZER
        if name not in registry.available():
            raise ValueError(
                f"name: unknown optimizer {name!r}; choose one of {registry.available()}"
            )
        if name == "carbs" and self.settings:
            from carbs.bayes.settings import CarbsSettings  # imports BoTorch: only when needed

            try:
                CarbsSettings.from_mapping(
                    {k: v for k, v in self.settings.items() if k != "max_cost"}
                )
            except (TypeError, ValueError) as exc:
                raise ValueError(str(exc).removeprefix("optimizer settings: ")) from exc
        return self


class SweepSpec(_Strict):
    """A whole sweep definition."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
    description: str = ""
    seed: int = 0
    storage: str = DEFAULT_STORAGE
    objective: ObjectiveSpec = Field(default_factory=ObjectiveSpec)
    workload: WorkloadSpec = Field(default_factory=WorkloadSpec)
    search_space: dict[str, ParamSpec]
    constraints: list[str] = Field(default_factory=list)
    budget: BudgetSpec = Field(default_factory=BudgetSpec)
    target: TargetSpec
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)

    @field_validator("search_space")
    @classmethod
    def _non_empty(cls, v: dict[str, ParamSpec]) -> dict[str, ParamSpec]:
        if not v:
            raise ValueError("search_space needs at least one parameter")
        return v

    @field_validator("constraints")
    @classmethod
    def _parse_constraints(cls, v: list[str]) -> list[str]:
        for expr in v:
            Constraint(expr)  # raises ValueError with the reason
        return v

    @model_validator(mode="after")
    def _check_names(self) -> SweepSpec:
        known = set(self.search_space) | set(self.workload.fixed)
        overlap = set(self.search_space) & set(self.workload.fixed)
        if overlap:
            raise ValueError(
                f"workload.fixed: parameters {sorted(overlap)} are both searched and fixed; keep one"
            )
        for i, expr in enumerate(self.constraints):
            missing = Constraint(expr).names - known
            if missing:
                raise ValueError(
                    f"constraints.{i}: constraint {expr!r} uses unknown names {sorted(missing)}; "
                    f"known parameters: {sorted(known)}"
                )
        if not any(p.scales_cost for p in self.search_space.values()):
            raise ValueError("search_space: mark at least one parameter with `scales_cost: true`")
        if not math.isfinite(self.target.flops):
            raise ValueError("target.flops: must be finite")
        return self

    def space(self) -> SearchSpace:
        params = tuple(p.to_param(n) for n, p in self.search_space.items())
        cons = tuple(Constraint(e) for e in self.constraints)
        return SearchSpace(params=params, constraints=cons, fixed=dict(self.workload.fixed))


def _format_errors(source: str, exc: ValidationError) -> str:
    lines = [f"{source}: invalid sweep definition ({exc.error_count()} problem(s)):"]
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        head, sep, rest = msg.partition(": ")
        if sep and head and " " not in head and head[0].isalpha():
            # model-level checks name the field they are about: "field.path: message"
            path, msg = (f"{path}.{head}" if path else head), rest
        path = path or "(top level)"
        lines.append(f"  - {path}: {msg}")
    return "\n".join(lines)


def parse_spec(text: str, source: str = "<string>") -> SweepSpec:
    """Parse and validate YAML text. Raises SpecError naming source, field path and fix."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise SpecError(f"{source}: expected a mapping of sweep fields at the top level")
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_format_errors(source, exc)) from exc
    if spec.workload.kind == "callable":
        try:
            spec.workload.load()
        except ValueError as exc:
            raise SpecError(f"{source}: workload.function: {exc}") from exc
    if spec.workload.size_function is not None:
        try:
            import_callable(spec.workload.size_function)
        except ValueError as exc:
            raise SpecError(
                f"{source}: workload.size_function: {exc}; give module:function or remove it "
                "(N is then FLOPs / (6 tokens))"
            ) from exc
    return spec


def load_spec(path: str | Path) -> SweepSpec:
    """Read a sweep YAML file; a relative sqlite path in `storage` stays relative to the CWD."""
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"{p}: no such sweep file")
    return parse_spec(p.read_text(), source=str(p))
