"""Derived artifacts of a sweep: the current fit, exports and rendered plots, cached.

Why caching: a scaling-law fit bootstraps hundreds of refits and a matplotlib figure takes a
second, while many researchers may poll the same dashboard. A fit is reused as long as no trial
was observed since (`Fit.n_trials` equals the observed count); plots are cached on disk under
a key that changes when a trial finishes. Matplotlib is not thread-safe, so drawing is serialised.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from experiments.service.queries import observed_count, plot_version
from experiments.spec import SweepSpec
from experiments.store.models import Export, Sweep
from experiments.store.repository import Store

PLOT_LOCK = threading.Lock()
_FIT_LOCKS: dict[int, threading.Lock] = {}
_FIT_LOCKS_GUARD = threading.Lock()


class FitUnavailable(RuntimeError):
    """No fit can be made (too few trials, or the scaling code is missing); says why."""


def _fit_lock(sweep_id: int) -> threading.Lock:
    with _FIT_LOCKS_GUARD:
        return _FIT_LOCKS.setdefault(sweep_id, threading.Lock())


def current_pick(store: Store, sw: Sweep, n_bootstrap: int = 200) -> tuple[int, Any]:
    """(fit id, LargeRunPick) for the sweep's observed trials, refitting only when stale."""
    try:
        from carbs.scaling.pick import LargeRunPick
        from experiments.large_run import fit_and_pick
    except ImportError as exc:  # pragma: no cover - only in a partial installation
        raise FitUnavailable(f"scaling-law fitting is not installed here: {exc}") from exc
    with _fit_lock(sw.id):
        fit = store.latest_fit(sw.id)
        if fit is not None and fit.n_trials == observed_count(store, sw.id):
            r = fit.result
            pick = LargeRunPick(
                params=dict(r["params"]),
                predicted_loss=float(r["predicted_loss"]),
                predicted_loss_ci=tuple(r["predicted_loss_ci"]),
                target_flops=float(r["target_flops"]),
                fits=dict(r.get("fits") or {}),
                warnings=list(r.get("warnings") or []),
            )
            return fit.id, pick
        try:
            return fit_and_pick(store, sw.name, n_bootstrap=n_bootstrap)
        except ValueError as exc:
            raise FitUnavailable(str(exc)) from exc


def export_formats(sw: Sweep) -> list[str]:
    from experiments.large_run import export_formats as formats

    return formats(SweepSpec.model_validate(sw.spec))


def export_filename(fmt: str) -> str:
    from experiments.large_run import EXPORT_FILES

    return EXPORT_FILES[fmt]


def get_export(store: Store, sw: Sweep, fmt: str, n_bootstrap: int = 200) -> Export:
    """The export of the current pick in `fmt`: stored once per fit, rendered on first ask."""
    from experiments.export import render_export

    fit_id, pick = current_pick(store, sw, n_bootstrap)
    for exp in reversed(store.exports(sw.id)):
        if exp.format == fmt and exp.fit_id == fit_id:
            return exp
    text = render_export(pick, fmt, sweep_name=sw.name)  # type: ignore[arg-type]
    return store.save_export(sw.id, fmt, text, pick.predicted_loss, fit_id)


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


def scaling_plots(store: Store, sw: Sweep, cache: Path, n_bootstrap: int = 200) -> list[Path]:
    """Scaling-law figures (frontier with extrapolation band, laws, backtest) of the current fit."""
    try:
        from dashboards.scaling_plots import plot_scaling
        from experiments.large_run import trial_points
    except ImportError as exc:  # pragma: no cover - only in a partial installation
        raise FitUnavailable(f"scaling plots are not installed here: {exc}") from exc
    fit_id, pick = current_pick(store, sw, n_bootstrap)
    out = cache / sw.name / f"scaling-fit{fit_id}"
    marker = out / ".done"
    if not marker.is_file():
        with PLOT_LOCK:
            if not marker.is_file():
                spec = SweepSpec.model_validate(sw.spec)
                points = trial_points(spec, store.trials(sw.id, with_curves=True))
                plot_scaling(points, pick, out)
                marker.write_text("ok")
    return sorted(p for p in out.iterdir() if p.suffix in (".png", ".svg"))


def predict(pick: Any, costs: list[float]) -> list[dict[str, float | None]]:
    """The fitted Pareto frontier L(C) at each cost (FLOPs): the best loss a run of that cost is
    expected to reach, with the 90 % bootstrap band where the fit drew one (inside its grid)."""
    import numpy as np

    from carbs.scaling import laws

    fr = (pick.fits or {}).get("frontier_pareto") or {}
    prm = fr.get("params") or {}
    if not prm or fr.get("log_C0") is None:
        raise FitUnavailable("the stored fit has no frontier law to predict with")
    theta = np.array([prm["a"], prm["e"], prm["alpha"]], float)
    c = np.asarray(costs, float)
    mid = laws.frontier_predict(theta, c, float(fr["log_C0"]))[0]
    band = fr.get("band") or {}
    lo = hi = [None] * len(c)
    if band.get("cost"):
        g = np.log(np.asarray(band["cost"], float))
        inside = (np.log(c) >= g[0]) & (np.log(c) <= g[-1])
        lo_v = np.interp(np.log(c), g, np.asarray(band["lo"], float))
        hi_v = np.interp(np.log(c), g, np.asarray(band["hi"], float))
        # bootstrap quantiles need not contain the point fit: widen to cover it (as the pick does)
        lo_v, hi_v = np.minimum(lo_v, mid), np.maximum(hi_v, mid)
        lo = [float(v) if ok else None for v, ok in zip(lo_v, inside, strict=True)]
        hi = [float(v) if ok else None for v, ok in zip(hi_v, inside, strict=True)]
    return [
        {"flops": float(f), "loss": float(m) if np.isfinite(m) else None, "lo": a, "hi": b}
        for f, m, a, b in zip(c, mid, lo, hi, strict=True)
    ]
