"""Scaling-law figures: frontier with extrapolation band, each law vs compute, the backtest.

Each function takes data and a path stem and writes `<stem>.png` and `<stem>.svg` (Agg
backend, no display needed); `plot_scaling` writes all of them for a pick.
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


def _save(fig: Any, stem: Path) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(out[0], dpi=120, bbox_inches="tight")
    fig.savefig(out[1], bbox_inches="tight")
    plt.close(fig)
    return out


def plot_frontier(points: Sequence[TrialPoint], pick: LargeRunPick, stem: Path) -> list[Path]:
    """Runs, Pareto set, the fitted L(C) with its 90 % band out to the target, the prediction."""
    f = pick.fits
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ok = [p for p in points if not p.failed and p.loss is not None]
    ax.scatter([p.cost for p in ok], [p.loss for p in ok], s=14, c="0.6", label="runs")
    fp = f.get("frontier_points", {})
    if fp:
        pc = [c for c, m in zip(fp["cost"], fp["pareto"], strict=True) if m]
        pl = [v for v, m in zip(fp["loss"], fp["pareto"], strict=True) if m]
        ax.scatter(pc, pl, s=22, c="C0", label="Pareto set")
    bad = [p.cost for p in points if p.failed]
    if bad:
        ymin = min(p.loss for p in ok)
        ax.scatter(bad, [ymin] * len(bad), marker="x", c="C3", label="failed (cost only)")
    band = f["frontier_pareto"]["band"]
    ax.plot(band["cost"], band["mid"], c="C0", label="L(C) = E + A C^-alpha")
    ax.fill_between(band["cost"], band["lo"], band["hi"], color="C0", alpha=0.2, label="90% band")
    lo, hi = pick.predicted_loss_ci
    ax.errorbar(
        [pick.target_flops],
        [pick.predicted_loss],
        yerr=[[pick.predicted_loss - lo], [hi - pick.predicted_loss]],
        fmt="*",
        c="C1",
        ms=12,
        capsize=4,
        label="large run (predicted)",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training FLOPs")
    ax.set_ylabel("loss")
    ax.set_title("Frontier and extrapolation")
    ax.legend(fontsize=7)
    return _save(fig, stem)


def plot_laws(pick: LargeRunPick, stem: Path) -> list[Path]:
    """One panel per scaled parameter: near-frontier runs, the law, its band, the pick."""
    lawd = pick.fits.get("laws", {})
    pts = pick.fits.get("points", {})
    names = list(lawd)
    if not names:
        return []
    cols = 3
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        law = lawd[name]
        obs = law.get("observed")
        if obs and pts:
            w = pts["near_weight"]
            ax.scatter(
                pts["cost"],
                obs,
                c=w,
                cmap="Blues",
                vmin=0,
                vmax=1,
                s=14,
                edgecolors="0.5",
                linewidths=0.3,
            )
        b = law["band"]
        ax.plot(b["cost"], b["mid"], c="C0")
        ax.fill_between(b["cost"], b["lo"], b["hi"], color="C0", alpha=0.2)
        if name in pick.params:
            ax.scatter(
                [pick.target_flops], [float(pick.params[name])], marker="*", s=120, c="C1", zorder=5
            )
        ax.set_xscale("log")
        ax.set_yscale("log" if min(b["lo"] + b["mid"]) > 0 else "linear")
        ax.set_title(name, fontsize=9)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.suptitle("Laws vs compute (shade: nearness to frontier; star: the pick)", fontsize=10)
    fig.tight_layout()
    return _save(fig, stem)


def plot_backtest(pick: LargeRunPick, stem: Path) -> list[Path]:
    """Held-out costlier frontier points against the law fitted on the cheaper ones."""
    bt = pick.fits.get("backtest", {})
    fig, ax = plt.subplots(figsize=(6, 4))
    if bt.get("loss_rel_err_mean") is None:
        ax.text(
            0.5,
            0.5,
            f"no backtest: {bt.get('reason', 'too few points')}",
            ha="center",
            transform=ax.transAxes,
        )
    else:
        ax.scatter(bt["test_cost"], bt["test_loss"], c="C0", label="held-out frontier runs")
        ax.scatter(
            bt["test_cost"], bt["test_pred"], marker="x", c="C3", label="law fitted on cheaper runs"
        )
        ax.axvline(bt["split_cost"], ls="--", c="0.5", label="split")
        ax.set_xscale("log")
        ax.set_title(
            f"Backtest: mean |error| {100 * bt['loss_rel_err_mean']:.2f}%, "
            f"max {100 * bt['loss_rel_err_max']:.2f}%",
            fontsize=10,
        )
        ax.set_xlabel("training FLOPs")
        ax.set_ylabel("loss")
        ax.legend(fontsize=7)
    return _save(fig, stem)


def plot_scaling(points: Sequence[TrialPoint], pick: LargeRunPick, out_dir: Path) -> list[Path]:
    """Write frontier, laws and backtest figures (PNG + SVG) into out_dir; return the paths."""
    out_dir = Path(out_dir)
    return [
        *plot_frontier(points, pick, out_dir / "scaling_frontier"),
        *plot_laws(pick, out_dir / "scaling_laws"),
        *plot_backtest(pick, out_dir / "scaling_backtest"),
    ]
