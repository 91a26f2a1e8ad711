"""Derived artifacts of a sweep: the current fit, exports and rendered plots, cached.

Why caching: a scaling-law fit bootstraps hundreds of refits and a matplotlib figure takes a
second, while many researchers may poll the same dashboard. A stored fit (written by `carbs
run` or `carbs export`) is reused as long as no trial was observed since; otherwise the pick is
computed and kept in this process's memory (`PickCache`) under the observed count: a read
never writes to the store, whoever makes it. Plots are cached on disk under a key that changes
when a trial finishes. Matplotlib is not thread-safe, so drawing is serialised. Only the cost
and size functions the service's entry-point policy allows are imported for a fit.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carbs.errors import SpecError
from experiments.entrypoints import SERVICE, EntryPointPolicy
from experiments.service.queries import observed_count, plot_version
from experiments.spec import stored_spec
from experiments.store.models import Sweep
from experiments.store.repository import Store

PLOT_LOCK = threading.Lock()
_FIT_LOCKS: dict[int, threading.Lock] = {}
_FIT_LOCKS_GUARD = threading.Lock()


class FitUnavailable(RuntimeError):
    """No fit can be made (too few trials, or the scaling code is missing); says why."""


def _fit_lock(sweep_id: int) -> threading.Lock:
    with _FIT_LOCKS_GUARD:
        return _FIT_LOCKS.setdefault(sweep_id, threading.Lock())


@dataclass
class PickCache:
    """Picks computed in this process, by sweep id: (observed count, fit id or None, pick)."""

    entrypoints: EntryPointPolicy = SERVICE
    n_bootstrap: int = 200
    _picks: dict[int, tuple[int, int | None, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Export:
    """A rendered export of the current pick (`fit_id` None: not stored, computed here)."""

    format: str
    content: str
    fit_id: int | None


def current_pick(store: Store, sw: Sweep, cache: PickCache) -> tuple[int | None, Any]:
    """(stored fit id or None, LargeRunPick) for the sweep's observed trials, refitting only
    when a trial was observed since. Writes nothing."""
    try:
        from carbs.scaling.pick import LargeRunPick
        from experiments.large_run import compute_pick
    except ImportError as exc:  # pragma: no cover - only in a partial installation
        raise FitUnavailable(f"scaling-law fitting is not installed here: {exc}") from exc
    with _fit_lock(sw.id):
        n_observed = observed_count(store, sw.id)
        cached = cache._picks.get(sw.id)
        if cached is not None and cached[0] == n_observed:
            return cached[1], cached[2]
        fit = store.latest_fit(sw.id)
        if fit is not None and fit.n_trials == n_observed:
            r = fit.result
            pick = LargeRunPick(
                params=dict(r["params"]),
                predicted_loss=float(r["predicted_loss"]),
                predicted_loss_ci=tuple(r["predicted_loss_ci"]),
                target_flops=float(r["target_flops"]),
                fits=dict(r.get("fits") or {}),
                warnings=list(r.get("warnings") or []),
            )
            fit_id: int | None = fit.id
        else:
            try:
                _, pick = compute_pick(store, sw.name, cache.n_bootstrap, cache.entrypoints)
            except (ValueError, SpecError) as exc:
                raise FitUnavailable(str(exc)) from exc
            fit_id = None
        cache._picks[sw.id] = (n_observed, fit_id, pick)
        return fit_id, pick


def export_formats(sw: Sweep) -> list[str]:
    from experiments.large_run import export_formats as formats

    return formats(stored_spec(sw.spec, sw.name))


def format_refusal(sw: Sweep, fmt: str) -> str | None:
    from experiments.large_run import format_refusal as refusal

    return refusal(stored_spec(sw.spec, sw.name), fmt)


def export_filename(fmt: str) -> str:
    """The download's file name: the export's path under the sweep folder, flattened."""
    from experiments.large_run import EXPORT_FILES

    return EXPORT_FILES[fmt].replace("/", "-")


def get_export(store: Store, sw: Sweep, fmt: str, cache: PickCache) -> Export:
    """The export of the current pick in `fmt`: the stored one of the same fit where there is
    one, else rendered now (and not stored: reads write nothing)."""
    from experiments.export import render_export

    fit_id, pick = current_pick(store, sw, cache)
    if fit_id is not None:
        for exp in reversed(store.exports(sw.id)):
            if exp.format == fmt and exp.fit_id == fit_id:
                return Export(fmt, exp.content, fit_id)
    text = render_export(pick, fmt, sweep_name=sw.name)  # type: ignore[arg-type]
    return Export(fmt, text, fit_id)


def frontier_plot(store: Store, sw: Sweep, cache: Path, fmt: str) -> Path:
    """`pareto_frontier.<fmt>` of the sweep's current trials (PNG or SVG)."""
    from experiments.report import write_report

    out = cache / sw.name / f"report-{plot_version(store, sw)}"
    path = out / f"pareto_frontier.{fmt}"
    if not path.is_file():
        with PLOT_LOCK:
            if not path.is_file():
                write_report(store, sw.name, out)
    return path


def scaling_plots(store: Store, sw: Sweep, cache: Path, picks: PickCache) -> list[Path]:
    """Scaling-law figures (frontier with extrapolation band, laws, backtest) of the current fit."""
    try:
        from dashboards.scaling_plots import plot_scaling
        from experiments.large_run import trial_points
    except ImportError as exc:  # pragma: no cover - only in a partial installation
        raise FitUnavailable(f"scaling plots are not installed here: {exc}") from exc
    fit_id, pick = current_pick(store, sw, picks)
    version = f"fit{fit_id}" if fit_id is not None else f"obs{observed_count(store, sw.id)}"
    out = cache / sw.name / f"scaling-{version}"
    marker = out / ".done"
    if not marker.is_file():
        with PLOT_LOCK:
            if not marker.is_file():
                spec = stored_spec(sw.spec, sw.name)
                points = trial_points(spec, store.trials(sw.id, with_curves=True))
                plot_scaling(points, pick, out)
                marker.write_text("ok")
    return sorted(p for p in out.iterdir() if p.suffix in (".png", ".svg"))


def predict(pick: Any, costs: list[float]) -> list[dict[str, float | None]]:
    """The scaling model's compute-optimal loss at each cost (FLOPs), with its 90 % interval:
    read off the curve the fit stored (log-log interpolation), so the answer is the model's own
    (the same one the pick's prediction and the plots use). None outside the curve's range."""
    import numpy as np

    curve = (pick.fits or {}).get("optimal_loss_curve") or {}
    if not curve.get("compute"):
        raise FitUnavailable("the stored fit has no loss curve to predict with")
    g = np.log(np.asarray(curve["compute"], float))
    c = np.log(np.asarray(costs, float))
    inside = (c >= g[0]) & (c <= g[-1])

    def at(key: str) -> list[float | None]:
        v = np.exp(np.interp(c, g, np.log(np.asarray(curve[key], float))))
        return [float(x) if ok else None for x, ok in zip(v, inside, strict=True)]

    mid, lo, hi = at("loss"), at("lo"), at("hi")
    return [
        {"flops": float(f), "loss": m, "lo": a, "hi": b}
        for f, m, a, b in zip(np.exp(c), mid, lo, hi, strict=True)
    ]
