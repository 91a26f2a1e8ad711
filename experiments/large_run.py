"""Fit the scaling laws on a stored sweep, pick the large-run config, and export it.

Glue between the store and `carbs.scaling` / `experiments.export`: the maths lives there; this
module only converts rows to points, saves the fit, and writes the export files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from carbs.scaling.pick import FitOptions, LargeRunPick, Workload, pick_large_run
from carbs.scaling.policy import Policy
from carbs.scaling.types import TrialPoint
from experiments.entrypoints import LOCAL, EntryPointPolicy
from experiments.export import EXPORT_FORMATS, render_export
from experiments.runner import load_price
from experiments.spec import SweepSpec, stored_spec
from experiments.store.models import Trial, TrialStatus
from experiments.store.repository import Store
from experiments.tracking import log_pick

EXPORT_FILES = EXPORT_FORMATS  # format -> path under the sweep's output folder


def load_size(
    spec: SweepSpec, entrypoints: EntryPointPolicy = LOCAL
) -> Callable[[dict[str, Any]], float] | None:
    """The spec's parameter counter (N of the scaling fits), or None: N = FLOPs / (6 tokens).

    Raises ValueError naming `workload.size_function` when it does not import: a fit on the
    wrong N would be quietly different, so it is not replaced by the default."""
    entry = spec.workload.size_function
    if entry is None:
        return None
    try:
        return entrypoints.resolve(entry)
    except ValueError as exc:
        raise ValueError(
            f"workload.size_function {entry!r}: {exc}; give an importable module:function "
            "or remove it to measure N as FLOPs / (6 tokens)"
        ) from exc


def trial_points(spec: SweepSpec, trials: list[Trial]) -> list[TrialPoint]:
    """Observed trials as fit inputs, with fixed params merged in and curves attached."""
    space = spec.space()
    points = []
    for t in trials:
        if t.status not in TrialStatus.OBSERVED or not (t.cost_flops and t.cost_flops > 0):
            continue  # a failure that never priced itself carries no information on cost
        if t.failure_reason == "over_cost_limit":
            continue  # never ran: says nothing about the loss or divergence
        curve = [
            {
                "step": m.step,
                "tokens": m.tokens,
                "flops": m.flops,
                "train_loss": m.train_loss,
                "val_loss": m.val_loss,
            }
            for m in (t.curve or [])
        ]
        points.append(
            TrialPoint(
                params=space.full(t.params),
                cost=float(t.cost_flops or 0.0),
                loss=t.loss if t.status == TrialStatus.SUCCEEDED else None,
                failed=t.status == TrialStatus.FAILED,
                curve=curve or None,
                metrics=dict(t.metrics or {}),
            )
        )
    return points


def compute_pick(
    store: Store,
    sweep_name: str,
    n_bootstrap: int = 200,
    entrypoints: EntryPointPolicy = LOCAL,
) -> tuple[int, LargeRunPick]:
    """Fit on every observed trial and pick for the spec's target, writing nothing; returns
    (number of points fitted, pick). Only the cost and size functions `entrypoints` allows
    are imported."""
    sweep = store.require_sweep(sweep_name)
    spec = stored_spec(sweep.spec, sweep.name)
    trials = store.trials(sweep.id, with_curves=True)
    points = trial_points(spec, trials)
    if not any(p.loss is not None for p in points):
        raise ValueError(f"sweep {sweep_name!r} has no successful trial yet: nothing to fit")
    workload = Workload(
        load_price(spec, entrypoints), load_size(spec, entrypoints), spec.scaling.roles or None
    )
    options = FitOptions(
        seed=spec.seed,
        n_bootstrap=n_bootstrap,
        policy=Policy(clamp_settings=not spec.scaling.extrapolate_settings),
    )
    pick = pick_large_run(points, spec.space(), spec.target.flops, workload, options)
    return len(points), pick


def fit_and_pick(
    store: Store,
    sweep_name: str,
    n_bootstrap: int = 200,
    entrypoints: EntryPointPolicy = LOCAL,
) -> tuple[int, LargeRunPick]:
    """`compute_pick`, then the fit stored; returns (fit id, pick)."""
    n_points, pick = compute_pick(store, sweep_name, n_bootstrap, entrypoints)
    sweep = store.require_sweep(sweep_name)
    fit = store.save_fit(sweep.id, "large_run_pick", n_points, pick.to_dict())
    return fit.id, pick


def export_formats(spec: SweepSpec) -> list[str]:
    """Production formats make sense only for the built-in MoE workload."""
    return list(EXPORT_FILES) if spec.workload.kind == "moe" else ["yaml"]


def format_refusal(spec: SweepSpec, fmt: str) -> str | None:
    """Why `fmt` does not fit this sweep's workload (naming the formats that do), or None.

    One message for the CLI and the API: a DBRX config from defaults, unrelated to the pick,
    is worse than no export."""
    allowed = export_formats(spec)
    if fmt in allowed:
        return None
    return (
        f"format {fmt!r} needs the built-in MoE workload (workload.kind: moe); sweep "
        f"{spec.name!r} runs workload {spec.workload.kind!r} and offers {allowed}"
    )


class UnsupportedFormat(ValueError):
    """An export format that does not fit the sweep's workload."""


def export_sweep(
    store: Store,
    sweep_name: str,
    out_dir: Path,
    formats: list[str] | None = None,
    tokenizer: str | None = None,
) -> list[Path]:
    """Pick the large run and write each export format to `out_dir` (and to the store).

    Raises UnsupportedFormat, before fitting, for a format the sweep's workload does not fit."""
    sweep = store.require_sweep(sweep_name)
    spec = stored_spec(sweep.spec, sweep.name)
    for fmt in formats or []:
        refusal = format_refusal(spec, fmt)
        if refusal:
            raise UnsupportedFormat(refusal)
    fit_id, pick = fit_and_pick(store, sweep_name)
    return export_pick(store, sweep_name, (fit_id, pick), out_dir, formats, tokenizer)


def export_pick(
    store: Store,
    sweep_name: str,
    fitted: tuple[int, LargeRunPick],
    out_dir: Path,
    formats: list[str] | None = None,
    tokenizer: str | None = None,
) -> list[Path]:
    """Write an already stored pick (`fit_and_pick`'s fit id and pick) in each export format,
    so a caller that also plots it fits once."""
    sweep = store.require_sweep(sweep_name)
    spec = stored_spec(sweep.spec, sweep.name)
    fit_id, pick = fitted
    paths = []
    for fmt in formats or export_formats(spec):
        text = render_export(pick, fmt, spec.name, tokenizer)  # type: ignore[arg-type]
        store.save_export(sweep.id, fmt, text, pick.predicted_loss, fit_id)
        path = out_dir / EXPORT_FILES[fmt]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        paths.append(path)
    log_pick(spec, pick, fit_id, paths)
    return paths
