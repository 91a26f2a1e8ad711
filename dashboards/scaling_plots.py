"""Scaling-model figures, all drawn from the one fitted model behind the pick.

`scaling_frontier`: the runs, their Pareto set, the model's compute-optimal loss with its 90 %
interval out past the target, the target, and the pick with its interval. `scaling_laws`: the
compute-optimal size and tokens, and each setting's optimum along the compute-optimal path, with
the runs (shaded by their weight in the fit) and the pick. `scaling_backtest`: the held-out runs of
each backtest fold against what the model fitted on the cheaper runs predicted. Each is written as
`<stem>.png` and `<stem>.svg` (Agg backend, no display needed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from carbs.scaling.pick import LargeRunPick  # noqa: E402
from carbs.scaling.types import TrialPoint  # noqa: E402


def _save(fig: Any, stem: Path) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(out[0], dpi=120, bbox_inches="tight")
    fig.savefig(out[1], bbox_inches="tight")
    plt.close(fig)
    return out


def _model_label(f: dict[str, Any]) -> str:
    m = f.get("model", {})
    return (
        f"model: E {m.get('irreducible_loss', float('nan')):.3g}, size exp. "
        f"{m.get('size_exponent', float('nan')):.3g}, data exp. {m.get('data_exponent', float('nan')):.3g}"
    )


def plot_frontier(points: Sequence[TrialPoint], pick: LargeRunPick, stem: Path) -> list[Path]:
    """Runs, the Pareto set, the model's compute-optimal loss and band, the target, the pick."""
    f = pick.fits
    runs, curve = f["runs"], f["optimal_loss_curve"]
    fig, ax = plt.subplots(figsize=(7, 4.8))
    ax.scatter(runs["cost"], runs["loss"], s=14, c="0.65", label="runs")
    pc = [c for c, m in zip(runs["cost"], runs["pareto"], strict=True) if m]
    pl = [v for v, m in zip(runs["loss"], runs["pareto"], strict=True) if m]
    ax.scatter(pc, pl, s=24, c="C0", label="Pareto set")
    if runs.get("failed_cost"):
        ax.scatter(
            runs["failed_cost"],
            [min(runs["loss"])] * len(runs["failed_cost"]),
            marker="x",
            c="C3",
            s=20,
            label="failed runs (cost only)",
        )
    ax.plot(
        curve["compute"], curve["loss"], c="C0", label="compute-optimal loss, " + _model_label(f)
    )
    ax.fill_between(
        curve["compute"],
        curve["lo"],
        curve["hi"],
        color="C0",
        alpha=0.18,
        label="90 % interval (bootstrap + backtest)",
    )
    ax.axvline(
        pick.target_flops, ls="--", c="0.4", lw=0.8, label=f"target {pick.target_flops:.3g} FLOPs"
    )
    lo, hi = pick.predicted_loss_ci
    ax.errorbar(
        [pick.target_flops],
        [pick.predicted_loss],
        yerr=[[pick.predicted_loss - lo], [hi - pick.predicted_loss]],
        fmt="*",
        c="C1",
        ms=13,
        capsize=4,
        label=f"the pick: {pick.predicted_loss:.4g} [{lo:.4g}, {hi:.4g}]",
    )
    at = _interp(curve["compute"], curve["loss"], pick.target_flops)
    if at is not None and pick.predicted_loss > at * 1.002:
        ax.annotate(
            f"pick {100 * (pick.predicted_loss / at - 1):+.1f} % above the curve:\n"
            "lr on its safe side, shape on the legal grid",
            (pick.target_flops, pick.predicted_loss),
            textcoords="offset points",
            xytext=(-150, 25),
            fontsize=7,
            arrowprops={"arrowstyle": "->", "lw": 0.6},
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training compute (FLOPs)")
    ax.set_ylabel("loss (nats per token)")
    ax.set_title(
        f"Frontier and extrapolation ({f['model']['structure'].split(';')[0]})", fontsize=10
    )
    ax.legend(fontsize=6.5, loc="upper right")
    return _save(fig, stem)


def _interp(xs: Sequence[float], ys: Sequence[float], x: float) -> float | None:
    import numpy as np

    if not xs or not (xs[0] <= x <= xs[-1]):
        return None
    return float(np.exp(np.interp(math.log(x), np.log(xs), np.log(ys))))


def _panels(
    pick: LargeRunPick,
) -> list[tuple[str, list[float], dict[str, list[float]] | None, list[float], float | None]]:
    """(title, runs' values, curve or None, curve x, pick value) per panel."""
    f = pick.fits
    runs, curve = f["runs"], f["optimal_loss_curve"]
    out = [
        (
            "compute-optimal size N (parameters)",
            runs["size"],
            {"value": curve["size"]},
            curve["compute"],
            f["pick"]["size"],
        ),
        (
            "compute-optimal tokens D",
            runs["tokens"],
            {"value": curve["tokens"]},
            curve["compute"],
            f["pick"]["tokens"],
        ),
    ]
    for name, c in f.get("optima_curves", {}).items():
        vals = runs["settings"].get(name)
        if vals is None:
            continue
        picked = pick.params.get(name)
        out.append(
            (
                f"{name}: optimum",
                vals,
                c,
                c["compute"],
                float(picked) if picked is not None else None,
            )
        )
    return out


def plot_laws(pick: LargeRunPick, stem: Path) -> list[Path]:
    """Size, tokens and each setting's optimum along the compute-optimal path, with the runs."""
    panels = _panels(pick)
    runs = pick.fits["runs"]
    cols = 3
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.3 * cols, 3.4 * rows), squeeze=False, layout="constrained"
    )
    sc = None
    for ax, (title, vals, curve, xs, picked) in zip(axes.flat, panels, strict=False):
        sc = ax.scatter(
            runs["cost"],
            vals,
            c=runs["weight"],
            cmap="Blues",
            vmin=0,
            vmax=1,
            s=14,
            edgecolors="0.5",
            linewidths=0.3,
        )
        if curve is not None:
            ax.plot(xs, curve["value"], c="C0", label="model optimum")
            if "lo" in curve:
                ax.fill_between(xs, curve["lo"], curve["hi"], color="C0", alpha=0.18, label="90 %")
        if picked is not None:
            ax.scatter(
                [pick.target_flops], [picked], marker="*", s=140, c="C1", zorder=5, label="the pick"
            )
        ax.set_xscale("log")
        ax.set_yscale("log" if min(vals) > 0 else "linear")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("training compute (FLOPs)", fontsize=8)
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    if sc is not None:
        fig.colorbar(sc, ax=axes.ravel().tolist(), shrink=0.6, label="run's weight in the fit")
    fig.suptitle(
        "Along the compute-optimal path: where the model puts N, D and each setting", fontsize=10
    )
    return _save(fig, stem)


def plot_backtest(pick: LargeRunPick, stem: Path) -> list[Path]:
    """Held-out costlier runs against the model fitted on the cheaper ones, fold by fold."""
    bt = pick.fits.get("backtest", {})
    fig, ax = plt.subplots(figsize=(6.5, 4.3))
    if not bt.get("folds"):
        ax.text(
            0.5,
            0.5,
            f"no backtest: {bt.get('reason', 'too few runs')}",
            ha="center",
            transform=ax.transAxes,
        )
    for i, fold in enumerate(bt.get("folds", [])):
        ax.scatter(
            fold["test_cost"],
            fold["test_loss"],
            s=12,
            c=f"C{i}",
            alpha=0.6,
            label=f"held out above {fold['cutoff_cost']:.2g} FLOPs (RMS log error "
            f"{fold['rms_log_error']:.3f})",
        )
        ax.scatter(fold["test_cost"], fold["test_pred"], s=12, marker="x", c=f"C{i}")
    if bt.get("folds"):
        ax.set_xscale("log")
        ax.set_xlabel("training compute (FLOPs)")
        ax.set_ylabel("loss (dots observed, crosses predicted)")
        ax.set_title(
            f"Rolling-origin backtest of the chosen model (RMS log error {bt['rms_log_error']:.3f})",
            fontsize=9,
        )
        ax.legend(fontsize=6)
    return _save(fig, stem)


def plot_scaling(points: Sequence[TrialPoint], pick: LargeRunPick, out_dir: Path) -> list[Path]:
    """Write the frontier, laws and backtest figures (PNG + SVG) into out_dir."""
    out_dir = Path(out_dir)
    return [
        *plot_frontier(points, pick, out_dir / "scaling_frontier"),
        *plot_laws(pick, out_dir / "scaling_laws"),
        *plot_backtest(pick, out_dir / "scaling_backtest"),
    ]
