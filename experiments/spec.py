"""The sweep definition: a YAML file validated with pydantic before anything runs.

Why pydantic: every error names the file, the field path and what was expected, so a researcher
fixes a typo in seconds instead of losing a trial to it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from carbs.errors import SpecError
from carbs.expressions import ExpressionError
from carbs.space import Constraint, Param, SearchSpace
from experiments import spec_checks
from experiments.entrypoints import (
    LOCAL,
    MOE_COST,
    MOE_WORKLOAD,
    EntryPointPolicy,
    EntryPointRefused,
    check_form,
    import_entrypoint,
)
from experiments.spec_yaml import MAX_BYTES, YamlRefused, decode_text, load_yaml

DEFAULT_STORAGE = "sqlite:///carbs.db"


class _Strict(BaseModel):
    # no unknown keys; no inf/nan in any float field (an infinite bound or CPU count is a typo)
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


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
    multiple_of: int | None = Field(None, gt=0, le=2**31)
    choices: list[Any] | None = None
    scales_cost: bool = False

    @model_validator(mode="after")
    def _check_bounds(self) -> ParamSpec:
        if self.kind == "categorical":
            if not self.choices:
                raise ValueError("a categorical parameter needs a non-empty `choices` list")
            spec_checks.check_choices(self.choices)
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
        if self.choices is not None:
            raise ValueError(f"`choices` is only for kind: categorical, not {self.kind}")
        if self.center is not None:
            spec_checks.check_center(self.center, self.min, self.max)
        if self.integer or self.kind == "int" or self.multiple_of is not None:
            spec_checks.check_integer_range(self.min, self.max, self.multiple_of)
        spec_checks.check_basic_bounds(self.kind, *self.to_param("p").basic_bounds())
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
        default_factory=dict, description="constants passed to every trial (plain data)"
    )
    num_cpus: float = Field(1.0, gt=0, le=1024)
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
    memory_gb: float | None = Field(None, gt=0, le=1e6)
    timeout_s: float | None = Field(None, gt=0, le=1e8, description="per-trial wall-clock limit")

    @model_validator(mode="after")
    def _check_function(self) -> WorkloadSpec:
        if self.kind == "callable":
            if not self.function:
                raise ValueError("kind: callable needs `function: package.module:function_name`")
        elif self.function is not None:
            raise ValueError("`function` is only used with kind: callable")
        return self

    @field_validator("function", "cost_function", "size_function")
    @classmethod
    def _entrypoint_form(cls, v: str | None) -> str | None:
        return None if v is None else check_form(v)

    @field_validator("fixed")
    @classmethod
    def _plain_fixed(cls, v: dict[str, Any]) -> dict[str, Any]:
        spec_checks.check_plain_data(v, "fixed")
        return v

    @field_validator("num_gpus")
    @classmethod
    def _gpus_in_range(cls, v: float | str) -> float | str:
        if not isinstance(v, str) and not (0 <= v <= 64):
            raise ValueError("num_gpus must be between 0 and 64, or 'auto'")
        return v

    @property
    def cost_entrypoint(self) -> str | None:
        if self.cost_function:
            return self.cost_function
        return MOE_COST if self.kind == "moe" else None

    @property
    def entrypoint(self) -> str:
        return self.function if self.kind == "callable" else MOE_WORKLOAD  # type: ignore[return-value]

    def entrypoints(self) -> list[tuple[str, str]]:
        """(field path, entry point) of every callable this workload makes the system import."""
        named = [
            ("workload.function" if self.kind == "callable" else "workload.kind", self.entrypoint),
            ("workload.cost_function", self.cost_entrypoint),
            ("workload.size_function", self.size_function),
        ]
        return [(f, e) for f, e in named if e is not None]


class ObjectiveSpec(_Strict):
    metric: str = "val_loss"
    direction: Literal["minimize"] = "minimize"


class BudgetSpec(_Strict):
    max_trials: int = Field(20, gt=0, le=1_000_000)
    max_total_cost: float | None = Field(
        None, gt=0, le=1e300, description="total training FLOPs of all trials"
    )
    max_cost_per_trial: float | None = Field(
        None, gt=0, le=1e300, description="FLOPs; costlier suggestions are masked"
    )
    parallel_trials: int = Field(2, gt=0, le=10_000)
    max_retries: int = Field(
        2, ge=0, le=100, description="retries of infrastructure failures per trial"
    )
    reproducible: bool = Field(
        False,
        description=(
            "hand results to the optimizer in the order trials started, so a rerun of the spec "
            "makes the same suggestions; a trial that finishes early waits (its worker idle) "
            "for the earlier ones. Early stopping and precision 'auto' still depend on timing"
        ),
    )


class PruningSpec(_Strict):
    """Cost-aware early stopping (`experiments.pruning`): off unless enabled."""

    enabled: bool = False
    min_evals: int = Field(
        3, ge=2, le=10_000, description="validation points a trial reports before it may be stopped"
    )
    margin: float = Field(
        0.0, ge=0.0, le=1.0, description="extra relative room given to a running trial's curve"
    )
    every_s: float = Field(5.0, gt=0, le=3600, description="seconds between checks")


class TargetSpec(_Strict):
    flops: float = Field(
        ..., gt=0, le=1e300, description="compute budget of the large run, in FLOPs"
    )


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
        spec_checks.check_plain_data(self.settings, "settings")
        if name == "carbs" and self.settings:
            from carbs.bayes.settings import CarbsSettings  # imports BoTorch: only when needed

            try:
                CarbsSettings.from_mapping(
                    {k: v for k, v in self.settings.items() if k != "max_cost"}
                )
            except (TypeError, ValueError) as exc:
                rest = str(exc).removeprefix("optimizer settings: ")
                head, sep, _ = rest.partition(": ")
                named = sep and " " not in head  # "key: message" names the setting
                raise ValueError(f"settings.{rest}" if named else f"settings: {rest}") from exc
        elif self.settings:
            unknown = sorted(k for k in self.settings if not registry.accepts(name, k))
            if unknown:
                raise ValueError(f"settings: optimizer {name!r} takes no setting(s) {unknown}")
        return self


class ScalingSpec(_Strict):
    """How the scaling model reads the sweep: which parameter plays which role (default: the
    usual names, e.g. d_model is the width), and whether settings may be picked past their
    searched range."""

    roles: dict[str, str] = Field(
        default_factory=dict,
        description="role -> parameter name; roles: width, depth, experts, experts_per_token, "
        "top_k, tokens, lr, batch, wd",
    )
    extrapolate_settings: bool = Field(
        False, description="allow settings (lr, batch, ...) past their searched range at the pick"
    )

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, v: dict[str, str]) -> dict[str, str]:
        from carbs.scaling.roles import ROLE_DEFAULTS

        for role in v:
            if role not in ROLE_DEFAULTS:
                raise ValueError(f"unknown role {role!r}; roles are {sorted(ROLE_DEFAULTS)}")
        return v


class TrackingSpec(_Strict):
    """Experiment tracking: every trial, and the pick, as runs of one MLflow experiment per
    sweep (needs `pip install carbs-moe[mlflow]`). On when `mlflow_uri` or
    $MLFLOW_TRACKING_URI is set; a tracker failure never loses or fails a trial."""

    mlflow_uri: str | None = Field(
        None, max_length=2_000, description="MLflow tracking URI (default $MLFLOW_TRACKING_URI)"
    )
    mlflow_experiment: str | None = Field(
        None, max_length=500, description="experiment name (default carbs/<sweep name>)"
    )
    enabled: bool = Field(True, description="false: no tracking, even with $MLFLOW_TRACKING_URI")


class SweepSpec(_Strict):
    """A whole sweep definition."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
    description: str = Field("", max_length=10_000)
    seed: int = Field(0, ge=0, lt=2**32, description="0 <= seed < 2**32")
    storage: str = Field(DEFAULT_STORAGE, max_length=2_000)
    objective: ObjectiveSpec = Field(default_factory=ObjectiveSpec)
    workload: WorkloadSpec = Field(default_factory=WorkloadSpec)
    search_space: dict[str, ParamSpec] = Field(..., max_length=64)
    constraints: list[str] = Field(default_factory=list, max_length=64)
    budget: BudgetSpec = Field(default_factory=BudgetSpec)
    pruning: PruningSpec = Field(default_factory=PruningSpec)
    target: TargetSpec
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    scaling: ScalingSpec = Field(default_factory=ScalingSpec)
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)

    @field_validator("search_space")
    @classmethod
    def _non_empty(cls, v: dict[str, ParamSpec]) -> dict[str, ParamSpec]:
        if not v:
            raise ValueError("search_space needs at least one parameter")
        for name in v:
            if not spec_checks.KEY_RE.match(name):
                raise ValueError(
                    f"parameter name {name!r} must be a name (letters, digits and _, "
                    "starting with a letter)"
                )
        return v

    @field_validator("constraints")
    @classmethod
    def _parse_constraints(cls, v: list[str]) -> list[str]:
        for i, expr in enumerate(v):
            try:
                Constraint(expr)
            except ExpressionError as exc:
                raise ValueError(f"constraints.{i}: {exc}") from exc
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
        names = set(self.search_space) | set(self.workload.fixed)
        for role, name in self.scaling.roles.items():
            if name not in names:
                raise ValueError(f"scaling.roles.{role}: no parameter named {name!r}")
        if not any(p.scales_cost for p in self.search_space.values()):
            raise ValueError("search_space: mark at least one parameter with `scales_cost: true`")
        if not math.isfinite(self.target.flops):
            raise ValueError("target.flops: must be finite")
        self._check_constraints_evaluate()
        if self.workload.kind == "moe":
            self._check_moe_settings()
        return self

    def _check_moe_settings(self) -> None:
        """The built-in trainer ignores keys it does not know (a typo would silently train
        defaults) and fails every trial of an impossible shape: both are refused here."""
        from carbs.errors import ConfigFailure
        from models.config import check_moe_params, moe_param_names

        known = moe_param_names()
        for where, names in (
            ("search_space", self.search_space),
            ("workload.fixed", self.workload.fixed),
        ):
            unknown = sorted(set(names) - known)
            if unknown:
                raise ValueError(
                    f"{where}: {unknown} are not settings of the moe workload; "
                    f"known: {sorted(known)}"
                )
        space = self.space()
        try:
            check_moe_params(space.full(space.canonical(space.center())))
        except ConfigFailure as exc:
            raise ValueError(
                f"workload: the search centre with the fixed values is not a valid MoE "
                f"config ({exc}); fix workload.fixed or the parameters' `center`"
            ) from exc

    def _check_constraints_evaluate(self) -> None:
        """Each constraint must evaluate (to anything) at the search centre: a comparison of a
        string with a number, or a division by zero there, is a typo to fix now, not a sweep
        whose every suggestion is silently infeasible."""
        space = self.space()
        env = space.full(space.canonical(space.center()))
        for i, c in enumerate(space.constraints):
            try:
                c.value(env)
            except ExpressionError as exc:
                raise ValueError(
                    f"constraints.{i}: {c.expr!r} cannot be evaluated at the search centre "
                    f"({exc}); fix the expression or the parameters' `center`"
                ) from exc
        if space.constraints and not spec_checks.some_config_is_feasible(space):
            raise ValueError(
                "constraints: no configuration of the search space satisfies every constraint "
                f"(the centre and {spec_checks.FEASIBILITY_SAMPLES} others tried); relax a "
                "constraint, widen a range or change the fixed values"
            )

    def space(self) -> SearchSpace:
        params = tuple(p.to_param(n) for n, p in self.search_space.items())
        cons = tuple(Constraint(e) for e in self.constraints)
        return SearchSpace(params=params, constraints=cons, fixed=dict(self.workload.fixed))


def problems(exc: ValidationError) -> list[tuple[str, str]]:
    """(dotted field path, message) per problem. Model-level checks name the field they are
    about as "field.path: message"; that path is joined onto where pydantic found it."""
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        msg = err["msg"].removeprefix("Value error, ")
        head, sep, rest = msg.partition(": ")
        if sep and head and " " not in head and head[0].isalpha():
            first = head.split(".")[0]
            if loc and loc[-1] == first:
                loc = loc[:-1]
            loc, msg = loc + head.split("."), rest
        out.append((".".join(loc) or "(top level)", msg))
    return out


def _format_errors(source: str, exc: ValidationError) -> str:
    lines = [f"{source}: invalid sweep definition ({exc.error_count()} problem(s)):"]
    lines += [f"  - {path}: {msg}" for path, msg in problems(exc)]
    return "\n".join(lines)


def parse_spec(
    text: str | bytes, source: str = "<string>", entrypoints: EntryPointPolicy = LOCAL
) -> SweepSpec:
    """Parse and validate YAML text. Raises SpecError naming source, field path and fix.

    `entrypoints` decides which callables the spec may name: on your own machine (`LOCAL`) any
    importable one, and each is imported now so a typo fails before anything runs; in the
    service, only the operator's allow-list, checked without importing anything."""
    try:
        data = load_yaml(decode_text(text))
    except YamlRefused as exc:
        raise SpecError(f"{source}: {exc}") from exc
    if not isinstance(data, dict):
        raise SpecError(f"{source}: expected a mapping of sweep fields at the top level")
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_format_errors(source, exc)) from exc
    except (TypeError, ArithmeticError, RecursionError) as exc:  # a checker met an odd value
        raise SpecError(f"{source}: invalid sweep definition: {type(exc).__name__}: {exc}") from exc
    check_entrypoints(spec, entrypoints, source)
    return spec


def stored_spec(data: Any, name: str = "sweep") -> SweepSpec:
    """A spec as stored with a sweep, validated again by today's rules; SpecError when it no
    longer passes (a row written by an older version), naming the sweep and the fix."""
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(
            _format_errors(f"sweep {name!r} (stored definition; resubmit it corrected)", exc)
        ) from exc


def check_entrypoints(spec: SweepSpec, policy: EntryPointPolicy, source: str) -> None:
    """Every callable the spec names is allowed by `policy` (and imports, where it trusts all)."""
    for field, entry in spec.workload.entrypoints():
        try:
            if policy.trusts_all:
                import_entrypoint(entry)
            else:
                policy.check(entry)
        except EntryPointRefused as exc:
            hint = (
                "; give module:function or remove it (N is then FLOPs / (6 tokens))"
                if field == "workload.size_function"
                else ""
            )
            raise SpecError(f"{source}: {field}: {exc}{hint}") from exc


def load_spec(path: str | Path) -> SweepSpec:
    """Read a sweep YAML file; a relative sqlite path in `storage` stays relative to the CWD."""
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"{p}: no such sweep file")
    return parse_spec(read_spec_text(p), source=str(p))


def read_spec_text(path: Path) -> str:
    """A sweep file's text (UTF-8, bounded in size); SpecError names the file otherwise."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
        return decode_text(raw)
    except YamlRefused as exc:
        raise SpecError(f"{path}: {exc}") from exc
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the sweep file: {exc.strerror or exc}") from exc
