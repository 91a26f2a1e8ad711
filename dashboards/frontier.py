"""The Pareto-frontier plot: every trial's cost against its loss, the frontier highlighted.

Why a function of plain arrays: the CLI report, the web dashboard and tests all draw the same
figure from whatever store or benchmark the points come from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from carbs.pareto import pareto_mask  # noqa: E402
from dashboards.figure_io import save  # noqa: E402


@dataclass(frozen=True)
class FrontierLabels:
    """The figure's title and axis labels (the defaults suit a sweep of training runs)."""

    title: str = "Pareto frontier"
    cost_label: str = "training cost (FLOPs)"
    loss_label: str = "held-out loss"


def plot_frontier(
    costs: Sequence[float],
    losses: Sequence[float],
    out_stem: Path,
    *,
    failed_costs: Sequence[float] = (),
    target_flops: float | None = None,
    labels: FrontierLabels = FrontierLabels(),
) -> list[Path]:
    """Write `<out_stem>.png` and `<out_stem>.svg`; returns both paths.

    Args:
        costs, losses: successful trials (same length).
        failed_costs: costs of config failures, drawn as crosses at the worst loss.
        target_flops: the large run's budget, marked (the axis reaches out to it) so the
            reader sees how far the fit must extrapolate.
        labels: title and axis labels.
    """
    c = np.asarray(costs, dtype=float)
    y = np.asarray(losses, dtype=float)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    if len(c):
        mask = pareto_mask(c, y)
        ax.scatter(c[~mask], y[~mask], s=22, color="#9aa5b1", label="trials", zorder=2)
        order = np.argsort(c[mask])
        ax.plot(
            c[mask][order],
            y[mask][order],
            "-o",
            color="#d1495b",
            ms=6,
            lw=1.8,
            label=f"Pareto frontier ({int(mask.sum())})",
            zorder=3,
        )
    if len(failed_costs):
        base = float(np.nanmax(y)) if len(y) else 1.0
        ax.scatter(
            failed_costs,
            [base] * len(failed_costs),
            marker="x",
            color="black",
            label="failed",
            zorder=4,
        )
    if target_flops:
        reach = f" ({target_flops / c.max():.0f}x the costliest trial)" if len(c) else ""
        ax.axvline(
            target_flops, ls="--", c="0.35", lw=1, label=f"target {target_flops:.3g} FLOPs{reach}"
        )
    ax.set_xscale("log")
    ax.set_xlabel(labels.cost_label)
    ax.set_ylabel(labels.loss_label)
    ax.set_title(labels.title)
    ax.grid(True, which="both", alpha=0.3)
    # the frontier falls to the bottom right; with the target out there, the top right is empty
    ax.legend(loc="upper right" if target_flops else "lower left", fontsize=8)
    fig.tight_layout()
    return save(fig, out_stem)
