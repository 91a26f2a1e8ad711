"""The runs a scaling model is fitted on, as arrays: cost, loss, size N, tokens D, settings.

Why one record for sweeps and imported tables alike: the model should not care whether the
runs came from our sweep store or from a published CSV; both become an `Evidence` with the same
meaning for every array (sizes as the user counts them, settings in the optimizer's log or logit
coordinates), and every later stage reads only this.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from carbs.scaling.lossmodel import SPARSITY
from carbs.scaling.roles import Roles
from carbs.scaling.types import TrialPoint
from carbs.space import Param, SearchSpace

SizeFn = Callable[[dict[str, Any]], float]


@dataclass(frozen=True)
class SettingAxis:
    """How a setting's values map to the model's coordinate z, and the searched range in z."""

    name: str
    kind: str  # "log", "logit", or "identity" (a derived setting already in z: the aspect)
    lo: float = -math.inf
    hi: float = math.inf

    def to_z(self, values: np.ndarray | float) -> np.ndarray:
        v = np.asarray(values, float)
        if self.kind == "identity":
            return v
        if self.kind == "logit":
            v = np.clip(v, 1e-12, 1 - 1e-12)
            return np.log(v / (1 - v))
        return np.log(np.maximum(v, 1e-300))

    def from_z(self, z: float) -> float:
        if self.kind == "identity":
            return float(z)
        if self.kind == "logit":
            return 1.0 / (1.0 + math.exp(-z))
        return math.exp(z)


@dataclass(frozen=True)
class Evidence:
    """Successful and failed runs. `loss` is nan where `failed`; `settings` hold z per run."""

    roles: Roles
    params: tuple[Mapping[str, Any], ...]
    cost: np.ndarray
    loss: np.ndarray
    failed: np.ndarray
    size: np.ndarray
    tokens: np.ndarray
    axes: Mapping[str, SettingAxis]
    settings: Mapping[str, np.ndarray]
    aspect: np.ndarray | None = None  # log(width / depth)
    sparsity: np.ndarray | None = None  # log(experts per token)
    size_source: str = "cost / (6 tokens)"
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> np.ndarray:
        return ~self.failed

    @property
    def n_ok(self) -> int:
        return int(self.ok.sum())

    def scales(self) -> dict[str, np.ndarray]:
        """Every run's scale variables, as a setting's optimum may follow them: log N, log D,
        log C, log width, each setting's z, and the sparsity."""
        out = {"log N": np.log(self.size), "log D": np.log(self.tokens), "log C": np.log(self.cost)}
        width = self.roles.get("width")
        if width and all(p.get(width) for p in self.params):
            out["log width"] = np.log([float(p[width]) for p in self.params])
        out.update({f"z {k}": v for k, v in self.settings.items()})
        if self.aspect is not None:
            out["z aspect"] = self.aspect
        if self.sparsity is not None:
            out[SPARSITY] = self.sparsity
        return out

    def overhead(self) -> np.ndarray:
        """C / (6 N D) per run: FLOPs spent beyond 6 per counted parameter per token."""
        return self.cost / (6.0 * self.size * self.tokens)


def setting_axis(p: Param) -> SettingAxis | None:
    """The coordinate of a searched numeric parameter (None for those it cannot model)."""
    if p.kind == "categorical":
        return None
    kind = "logit" if p.kind == "logit" else "log"
    if kind == "log" and (p.min is None or p.min <= 0):
        return None
    ax = SettingAxis(p.name, kind)
    lo = float(ax.to_z(p.min)) if p.min is not None else -math.inf
    hi = float(ax.to_z(p.max)) if p.max is not None else math.inf
    return SettingAxis(p.name, kind, lo, hi)


def from_trials(
    points: Sequence[TrialPoint],
    space: SearchSpace,
    roles: Roles,
    size_fn: SizeFn | None = None,
) -> Evidence:
    """Evidence of a sweep's trials. Needs the token count of every run (the `tokens` role, or
    `metrics["tokens"]`); N is `size_fn` of the config, else C / (6 D).

    Raises ValueError naming what is missing."""
    pts = [p for p in points if p.cost > 0 and math.isfinite(p.cost)]
    pts = [
        p for p in pts if p.failed or (p.loss is not None and math.isfinite(p.loss) and p.loss > 0)
    ]
    tokens = np.array([_tokens(p, roles) for p in pts], float)
    if len(pts) and not np.all(np.isfinite(tokens) & (tokens > 0)):
        raise ValueError(
            "every run needs its token count: name the tokens parameter (scaling.roles.tokens) "
            "or report metrics['tokens']"
        )
    cost = np.array([p.cost for p in pts], float)
    size = _sizes(pts, cost, tokens, size_fn)
    axes = {n: ax for n in roles.settings if (ax := setting_axis(space.param(n))) is not None}
    settings = {
        n: ax.to_z(np.array([float(p.params.get(n, np.nan)) for p in pts]))
        for n, ax in axes.items()
    }
    return Evidence(
        roles=roles,
        params=tuple(dict(p.params) for p in pts),
        cost=cost,
        loss=np.array([np.nan if p.failed else float(p.loss) for p in pts]),  # type: ignore[arg-type]
        failed=np.array([bool(p.failed) for p in pts]),
        size=size,
        tokens=tokens,
        axes=axes,
        settings={n: v for n, v in settings.items() if np.all(np.isfinite(v))},
        aspect=_aspect([p.params for p in pts], roles),
        sparsity=_sparsity([p.params for p in pts], roles),
        size_source="size_fn (parameter count)" if size_fn else "cost / (6 tokens)",
    )


@dataclass(frozen=True)
class Columns:
    """Which columns of an imported table hold N, D, the loss, the cost (default 6 N D) and
    the settings (modelled in log; their values must be positive)."""

    size: str
    tokens: str
    loss: str
    cost: str | None = None
    settings: tuple[str, ...] = ()


def from_table(
    rows: Sequence[Mapping[str, Any]], cols: Columns, roles: Roles | None = None
) -> Evidence:
    """Evidence of imported runs (a CSV of published results): one mapping per run. Raises
    ValueError naming the first bad row and column."""

    def column(name: str) -> np.ndarray:
        vals = []
        for i, r in enumerate(rows):
            try:
                v = float(r[name])
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"row {i}: column {name!r} is missing or not a number") from exc
            vals.append(v)
        return np.array(vals, float)

    n, d, y = column(cols.size), column(cols.tokens), column(cols.loss)
    for name, v in (
        (cols.size, n),
        (cols.tokens, d),
        (cols.loss, y),
        *((s, column(s)) for s in cols.settings),
    ):
        bad = np.flatnonzero(~(np.isfinite(v) & (v > 0)))
        if len(bad):
            raise ValueError(f"row {int(bad[0])}: column {name!r} must be a positive number")
    c = column(cols.cost) if cols.cost else 6.0 * n * d
    axes = {s: SettingAxis(s, "log") for s in cols.settings}
    return Evidence(
        roles=roles or Roles({"tokens": cols.tokens}, tuple(cols.settings)),
        params=tuple(dict(r) for r in rows),
        cost=c,
        loss=y,
        failed=np.zeros(len(rows), bool),
        size=n,
        tokens=d,
        axes=axes,
        settings={s: axes[s].to_z(column(s)) for s in cols.settings},
        size_source=f"column {cols.size!r}",
    )


def _tokens(p: TrialPoint, roles: Roles) -> float:
    key = roles.tokens
    if key and key in p.params:
        return float(p.params[key])
    t = p.metrics.get("tokens")
    return float(t) if t is not None else math.nan


def _sizes(
    pts: Sequence[TrialPoint], cost: np.ndarray, tokens: np.ndarray, size_fn: SizeFn | None
) -> np.ndarray:
    if size_fn is None:
        return cost / (6.0 * tokens)
    out = np.empty(len(pts))
    for i, p in enumerate(pts):
        try:
            v = float(size_fn(dict(p.params)))
        except Exception as exc:  # noqa: BLE001 - re-raised with the run named
            raise ValueError(f"size_fn failed on run {i} ({p.params}): {exc}") from exc
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"size_fn gave {v!r} for run {i}: it must count parameters (> 0)")
        out[i] = v
    return out


def _value(params: Mapping[str, Any], name: str | None) -> float | None:
    if name is None or params.get(name) is None:
        return None
    try:
        v = float(params[name])
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def _aspect(params: Sequence[Mapping[str, Any]], roles: Roles) -> np.ndarray | None:
    vals = [(_value(p, roles.get("width")), _value(p, roles.get("depth"))) for p in params]
    if not vals or any(w is None or d is None for w, d in vals):
        return None
    return np.log([w / d for w, d in vals])  # type: ignore[operator]


def _sparsity(params: Sequence[Mapping[str, Any]], roles: Roles) -> np.ndarray | None:
    out = []
    for p in params:
        ratio = _value(p, roles.get("experts_per_token"))
        if ratio is None:
            experts, k = _value(p, roles.get("experts")), _value(p, roles.get("top_k")) or 1.0
            ratio = experts / k if experts is not None else None
        if ratio is None:
            return None
        out.append(math.log(max(ratio, 1.0)))
    return np.array(out, float) if out else None
