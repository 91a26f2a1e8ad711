"""The Pareto-frontier plot: every trial's cost against its loss, the frontier highlighted.

Why a function of plain arrays: the CLI report, the web dashboard and tests all draw the same
figure from whatever store or benchmark the points come from.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from carbs.pareto import pareto_mask  # noqa: E402


def plot_frontier(
    costs: Sequence[float],
    losses: Sequence[float],
    out_stem: Path,
    *,
    title: str = "Pareto frontier",
    failed_costs: Sequence[float] = (),
    cost_label: str = "training cost (FLOPs)",
) -> list[Path]:
    """Write `<out_stem>.png` and `<out_stem>.svg`; returns both paths.

    Args:
        costs, losses: successful trials (same length).
        failed_costs: costs of config failures, drawn as crosses on the bottom axis.
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
    ax.set_xscale("log")
    ax.set_xlabel(cost_label)
    ax.set_ylabel("held-out loss")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [out_stem.with_suffix(".png"), out_stem.with_suffix(".svg")]
    for p in paths:
        fig.savefig(p)
    plt.close(fig)
    return paths
