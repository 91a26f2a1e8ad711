"""The laws figure: the compute-optimal size and tokens, and each setting's optimum along the
compute-optimal path, with the runs (shaded by their weight in the fit), the searched range,
the target and the pick. Each panel's legend gives its law's exponent (d ln y / d ln C from the
costliest run to the target) and its value at the target with the 90 % interval; where the
pick is not on its law, a note says why (dashboards.pick_gaps).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from carbs.scaling.pick import LargeRunPick  # noqa: E402
from dashboards.figure_io import log_y, save  # noqa: E402
from dashboards.pick_gaps import at, bounds, setting_gap, size_gap, slope  # noqa: E402


@dataclass(frozen=True)
class Panel:
    """One law: the runs' values, the curve (x, y and band) and the pick, with the notes."""

    title: str
    ylabel: str
    symbol: str
    runs: list[float]
    compute: list[float]
    law: list[float]
    lo: list[float] | None = None
    hi: list[float] | None = None
    interval: Sequence[float] | None = None  # at the target, where not read off the band
    picked: float | None = None
    searched: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    from_prior: list[bool] | None = None  # points where the law is the runs' size grown at 0.5


def panels(pick: LargeRunPick) -> list[Panel]:
    """Size, tokens, then every setting the model fits an optimum for."""
    f = pick.fits
    runs, curve, p = f["runs"], f["optimal_loss_curve"], f["pick"]
    target = pick.target_flops
    n_law = at(curve["compute"], curve["size"], target)
    d_law = at(curve["compute"], curve["tokens"], target)
    out = [
        Panel(
            "compute-optimal size N",
            "parameters N",
            "N",
            runs["size"],
            curve["compute"],
            curve["size"],
            interval=p.get("compute_optimal_size_ci90"),
            picked=p["size"],
            notes=size_gap(n_law, p["size"], "size"),
            from_prior=curve.get("size_from_prior"),
        ),
        Panel(
            "compute-optimal tokens D",
            "training tokens D",
            "D",
            runs["tokens"],
            curve["compute"],
            curve["tokens"],
            picked=p["tokens"],
            notes=size_gap(d_law, p["tokens"], "tokens"),
            from_prior=curve.get("size_from_prior"),
        ),
    ]
    searched = f.get("searched") or {}
    for name, c in f.get("optima_curves", {}).items():
        vals = runs["settings"].get(name)
        if vals is None:
            continue
        raw = pick.params.get(name)
        picked = float(raw) if isinstance(raw, int | float) else None
        law = at(c["compute"], c["value"], target)
        out.append(
            Panel(
                f"{name}: its optimum",
                name,
                name,
                vals,
                c["compute"],
                c["value"],
                c.get("lo"),
                c.get("hi"),
                picked=picked,
                searched=searched.get(name),
                notes=setting_gap(f, name, law, picked),
            )
        )
    return out


def split(ys: Sequence[float], mask: Sequence[bool]) -> tuple[list[float], list[float]]:
    """Two copies of a curve, NaN where the other is drawn, joined at each change-over."""
    nan = float("nan")
    a = [nan if m else y for y, m in zip(ys, mask, strict=True)]
    b = [y if m else nan for y, m in zip(ys, mask, strict=True)]
    for i in range(1, len(ys)):
        if mask[i] != mask[i - 1]:
            b[i - 1 if mask[i] else i] = ys[i - 1 if mask[i] else i]
    return a, b


def law_label(panel: Panel, start: float, target: float) -> str:
    """'law: N ~ C^0.50' with its value at the target and the 90 % interval there."""
    k = slope(panel.compute, panel.law, start, target)
    value = at(panel.compute, panel.law, target)
    head = f"law: {panel.symbol} \u221d C^{k:.2f}" if k is not None else "law"
    if value is None:
        return head
    lo_hi = panel.interval
    if lo_hi is None and panel.lo is not None and panel.hi is not None:
        lo_hi = (at(panel.compute, panel.lo, target), at(panel.compute, panel.hi, target))
    ci = f" [{lo_hi[0]:.3g}, {lo_hi[1]:.3g}]" if lo_hi and None not in lo_hi else ""
    return f"{head}\n{value:.3g}{ci} at the target"


def _searched(ax: Any, s: dict[str, Any]) -> None:
    """The values the large run may take, within the limits the data set: each choice dotted,
    or what lies beyond the range's ends shaded (so a far bound does not squash the runs)."""
    ylim = ax.get_ylim()
    if s.get("choices"):
        shown = [c for c in s["choices"] if isinstance(c, int | float) and ylim[0] <= c <= ylim[1]]
        for i, c in enumerate(shown):
            ax.axhline(c, ls=":", c="C2", lw=1.2, label="searched choices" if i == 0 else None)
    else:
        lo, hi = bounds(s)
        spans = [(ylim[0], lo), (hi, ylim[1])]
        label = "outside the searched range"
        for a, b in spans:
            if a is not None and b is not None and a < b:
                ax.axhspan(a, b, color="0.5", alpha=0.15, lw=0, label=label)
                label = None
    ax.set_ylim(ylim)


def draw_panel(ax: Any, panel: Panel, runs: dict[str, Any], pick: LargeRunPick) -> Any:
    """One law's panel; returns the runs' scatter (for the colour bar)."""
    sc = ax.scatter(
        runs["cost"],
        panel.runs,
        c=runs["weight"],
        cmap="Blues",
        vmin=0,
        vmax=1,
        s=14,
        edgecolors="0.5",
        linewidths=0.3,
        label="runs",
    )
    label = law_label(panel, max(runs["cost"]), pick.target_flops)
    if panel.from_prior and any(panel.from_prior):
        fitted, prior = split(panel.law, panel.from_prior)
        ax.plot(panel.compute, fitted, c="C0", label=label)
        ax.plot(
            panel.compute,
            prior,
            c="C0",
            ls="--",
            label="dashed: the fitted N left what the runs support;\n"
            "  there N is the runs' grown as C^0.5 (kept within C^0.3..C^0.75)",
        )
    else:
        ax.plot(panel.compute, panel.law, c="C0", label=label)
    if panel.lo is not None and panel.hi is not None:
        ax.fill_between(
            panel.compute, panel.lo, panel.hi, color="C0", alpha=0.18, label="90 % interval"
        )
    ax.axvline(pick.target_flops, ls="--", c="0.4", lw=0.8)
    if panel.picked is not None:
        ax.scatter(
            [pick.target_flops],
            [panel.picked],
            marker="*",
            s=150,
            c="C1",
            edgecolors="k",
            linewidths=0.4,
            zorder=5,
            label=f"the pick: {panel.picked:.3g}",
        )
    for note in panel.notes:  # in the legend, below the plot: never over the data
        ax.plot([], [], " ", label="\u2192 " + note)
    ax.set_xscale("log")
    values = [*panel.runs, *panel.law, *([panel.picked] if panel.picked else [])]
    if min(values) > 0:
        log_y(ax)
    if panel.searched:
        _searched(ax, panel.searched)
    ax.set_title(panel.title, fontsize=9)
    ax.set_xlabel("training compute C (FLOPs)", fontsize=8)
    ax.set_ylabel(panel.ylabel, fontsize=8)
    ax.tick_params(labelsize=7, which="both")
    ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    return sc


def plot_laws(pick: LargeRunPick, stem: Path) -> list[Path]:
    """Size, tokens and each setting's optimum along the compute-optimal path, with the runs."""
    ps = panels(pick)
    runs = pick.fits["runs"]
    cols = min(3, len(ps))
    rows = (len(ps) + cols - 1) // cols
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.6 * cols, 5.0 * rows), squeeze=False, layout="constrained"
    )
    sc = None
    for ax, panel in zip(axes.flat, ps, strict=False):
        sc = draw_panel(ax, panel, runs, pick)
    for ax in list(axes.flat)[len(ps) :]:
        ax.axis("off")
    if sc is not None:
        fig.colorbar(sc, ax=axes.ravel().tolist(), shrink=0.6, label="run's weight in the fit")
    fig.suptitle(
        f"Along the compute-optimal path to the target ({pick.target_flops:.3g} FLOPs, dashed): "
        "where the model puts N, D and each setting",
        fontsize=10,
    )
    return save(fig, stem)
