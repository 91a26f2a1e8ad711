"""The learning-curves figure of a sweep: validation and training loss in two panels (never
mixed), one colour per trial, the best trials by final loss and every running one.

Why a cap on trials: twenty curves in one colour told nothing; a legend of the best ten and the
running ones tells which trial is which and which are still going.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from dashboards.figure_io import save  # noqa: E402

METRICS = (("val_loss", "validation loss"), ("train_loss", "training loss"))
# one colour per trial number, the dashboard's (static/curves.js): a trial looks the same in both
PALETTE = (
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#393b79", "#ad494a", "#637939", "#7b4173", "#e7969c", "#3182bd",
    "#31a354", "#756bb1", "#fd8d3c", "#843c39",
)  # fmt: skip


@dataclass(frozen=True)
class Curve:
    """One trial's reported points: x (tokens seen, else the step) and each metric (None
    where the trial did not report it at that point)."""

    number: int
    status: str
    loss: float | None
    x: list[float]
    metrics: dict[str, list[float | None]]


def choose(curves: Sequence[Curve], top_k: int) -> list[Curve]:
    """Running trials, then the `top_k` finished ones with the lowest final loss."""
    running = [c for c in curves if c.status == "running"]
    done = sorted(
        (c for c in curves if c.status != "running"),
        key=lambda c: (c.loss is None, c.loss if c.loss is not None else 0.0, c.number),
    )
    return [*running, *done[:top_k]]


def plot_learning_curves(
    curves: Sequence[Curve], out_stem: Path, *, x_label: str, title: str, top_k: int = 10
) -> list[Path]:
    """Write `<out_stem>.png` and `.svg`: a panel per metric that any trial reported."""
    shown = choose(curves, top_k)
    metrics = [(k, label) for k, label in METRICS if any(_pairs(c, k) for c in shown)]
    fig, axes = plt.subplots(
        1, max(len(metrics), 1), figsize=(6.2 * max(len(metrics), 1), 4.4), squeeze=False,
        layout="constrained",
    )  # fmt: skip
    for ax, (key, label) in zip(axes.flat, metrics, strict=False):
        for c in shown:
            pts = _pairs(c, key)
            if not pts:
                continue
            live = c.status == "running"
            ax.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                ls=":" if live else "-",
                marker="o" if len(pts) == 1 else None,
                lw=1.6 if live else 1.2,
                color=PALETTE[c.number % len(PALETTE)],
                label=f"#{c.number} running" if live else f"#{c.number} ({_fmt(c.loss)})",
            )
        ax.set_xscale("log")
        ax.set_xlabel(x_label)
        ax.set_ylabel(f"{label} (nats per token)")
        ax.set_title(label, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6.5, title="trial (final loss)", title_fontsize=7, ncols=2)
    if not metrics:
        axes[0, 0].text(0.5, 0.5, "no learning curves reported", ha="center", va="center")
        axes[0, 0].axis("off")
    n_done = sum(c.status != "running" for c in curves)
    fig.suptitle(
        f"{title}: the best {min(top_k, n_done)} of {n_done} finished trials and every running one",
        fontsize=10,
    )
    return save(fig, out_stem)


def _pairs(c: Curve, key: str) -> list[tuple[float, float]]:
    return [
        (x, y) for x, y in zip(c.x, c.metrics.get(key, []), strict=False) if y is not None and x > 0
    ]


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4g}"
