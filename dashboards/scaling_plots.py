"""Scaling-model figures, all drawn from the one fitted model behind the pick.

`scaling_frontier`: the runs, their Pareto set, the model's compute-optimal loss with its 90 %
interval out past the target, the target, and the pick with its interval. `scaling_laws`: the
compute-optimal size and tokens, and each setting's optimum along the compute-optimal path, with
the runs (shaded by their weight in the fit) and the pick. `scaling_backtest`: the held-out runs of
each backtest fold against what the model fitted on the cheaper runs predicted. Each is written as
`<stem>.png` and `<stem>.svg` (Agg backend, no display needed).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from carbs.scaling.pick import LargeRunPick  # noqa: E402
from carbs.scaling.types import TrialPoint  # noqa: E402
from dashboards.figure_io import log_y, save  # noqa: E402
from dashboards.pick_gaps import loss_gap  # noqa: E402
from dashboards.scaling_laws import plot_laws  # noqa: E402


def _ci(v: float | None, ci: Sequence[float] | None) -> str:
    if v is None:
        return "?"
    return f"{v:.3g}" + (f" [{ci[0]:.3g}, {ci[1]:.3g}]" if ci else "")


def _model_label(f: dict[str, Any]) -> str:
    """The fitted law L = E + A/N^alpha + B/D^beta with its 90 % bootstrap intervals."""
    m = f.get("model", {})
    return (
        "compute-optimal loss of the fitted model\n"
        f"  E {_ci(m.get('irreducible_loss'), m.get('irreducible_loss_ci90'))}, "
        f"size exp. \u03b1 {_ci(m.get('size_exponent'), m.get('size_exponent_ci90'))},\n"
        f"  data exp. \u03b2 {_ci(m.get('data_exponent'), m.get('data_exponent_ci90'))}"
    )


def plot_frontier(points: Sequence[TrialPoint], pick: LargeRunPick, stem: Path) -> list[Path]:
    """Runs, the Pareto set, the model's compute-optimal loss and band, the target, the pick;
    where the pick is not on the curve, the reasons (its config is not the curve's)."""
    f = pick.fits
    runs, curve = f["runs"], f["optimal_loss_curve"]
    fig, ax = plt.subplots(figsize=(7.6, 5.2), layout="constrained")
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
    ax.plot(curve["compute"], curve["loss"], c="C0", label=_model_label(f))
    ax.fill_between(
        curve["compute"],
        curve["lo"],
        curve["hi"],
        color="C0",
        alpha=0.18,
        label="its 90 % interval (bootstrap + backtest), held above E's 5 % quantile\n"
        "  and, past the costliest run, below the best run's loss",
    )
    ax.axvline(max(runs["cost"]), ls=":", c="0.6", lw=0.8)
    ax.axvline(
        pick.target_flops,
        ls="--",
        c="0.4",
        lw=0.8,
        label=f"target {pick.target_flops:.3g} FLOPs "
        f"({pick.target_flops / max(runs['cost']):.0f}x the costliest run, dotted)",
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
        zorder=5,
    )
    why = loss_gap(f, pick.predicted_loss, pick.target_flops)
    if why:
        ax.annotate(
            "\n".join(why),
            (pick.target_flops, pick.predicted_loss),
            textcoords="offset points",
            xytext=(-12, 40),
            ha="right",
            fontsize=7,
            bbox={"boxstyle": "round", "fc": "white", "ec": "0.7"},
            arrowprops={"arrowstyle": "->", "lw": 0.6},
        )
    ax.set_xscale("log")
    log_y(ax)
    ax.set_xlabel("training compute C (FLOPs)")
    ax.set_ylabel("held-out loss (nats per token)")
    ax.set_title(
        f"Frontier and extrapolation ({f['model']['structure'].split(';')[0]})", fontsize=10
    )
    ax.legend(fontsize=6.5, loc="lower left")
    return save(fig, stem)


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
        ax.set_xlabel("training compute C (FLOPs)")
        ax.set_ylabel("held-out loss (nats per token): dots observed, crosses predicted")
        ax.set_title(
            f"Rolling-origin backtest of the chosen model (RMS log error {bt['rms_log_error']:.3f})",
            fontsize=9,
        )
        ax.legend(fontsize=6)
    return save(fig, stem)


def plot_scaling(points: Sequence[TrialPoint], pick: LargeRunPick, out_dir: Path) -> list[Path]:
    """Write the frontier, laws and backtest figures (PNG + SVG) into out_dir."""
    out_dir = Path(out_dir)
    return [
        *plot_frontier(points, pick, out_dir / "scaling_frontier"),
        *plot_laws(pick, out_dir / "scaling_laws"),
        *plot_backtest(pick, out_dir / "scaling_backtest"),
    ]
