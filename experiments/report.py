"""`carbs report`: the trials table, the Pareto plot and the learning curves of a stored
sweep, written to files."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from dashboards.frontier import FrontierLabels, plot_frontier
from dashboards.learning_curves import Curve, plot_learning_curves
from experiments.spec import stored_spec
from experiments.store.models import Trial, TrialStatus
from experiments.store.repository import Store

TABLE_COLUMNS = ("number", "status", "loss", "cost_flops", "cost_seconds", "failure_reason")


def trial_rows(trials: list[Trial]) -> list[dict[str, Any]]:
    """One flat dict per trial: fixed columns, then every searched parameter."""
    names = sorted({k for t in trials for k in t.params})
    rows = []
    for t in trials:
        row: dict[str, Any] = {c: getattr(t, c) for c in TABLE_COLUMNS}
        row.update({n: t.params.get(n) for n in names})
        rows.append(row)
    return rows


def format_table(trials: list[Trial]) -> str:
    """A fixed-width text table for the terminal."""
    rows = trial_rows(trials)
    if not rows:
        return "(no trials)"
    cols = list(rows[0])
    cells = [[_fmt(r[c]) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    head = "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))
    body = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join([head, "-" * len(head), *body])


def trials_csv(trials: list[Trial]) -> str:
    rows = trial_rows(trials)
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return buf.getvalue()


def curves_of(trials: list[Trial]) -> tuple[list[Curve], str]:
    """The trials' stored curves for the figure, and its x axis: tokens where every point
    has them, else the step."""
    have = [t for t in trials if t.curve]
    tokens = all(m.tokens for t in have for m in t.curve)
    curves = [
        Curve(
            t.number,
            t.status,
            t.loss if t.loss is not None and math.isfinite(t.loss) else None,
            [float(m.tokens if tokens else max(m.step, 1)) for m in t.curve],
            {
                "val_loss": [m.val_loss for m in t.curve],
                "train_loss": [m.train_loss for m in t.curve],
            },
        )
        for t in have
    ]
    return curves, "tokens seen" if tokens else "training step"


def write_report(store: Store, sweep_name: str, out_dir: Path) -> list[Path]:
    """Frontier plot and learning curves (PNG + SVG), trials.csv and trials.txt for one sweep."""
    sweep = store.require_sweep(sweep_name)
    spec = stored_spec(sweep.spec, sweep.name)
    trials = store.trials(sweep.id, with_curves=True)
    ok = [
        t
        for t in trials
        if t.status == TrialStatus.SUCCEEDED and t.loss is not None and math.isfinite(t.loss)
    ]
    failed = [t for t in trials if t.status == TrialStatus.FAILED and t.cost_flops]
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = plot_frontier(
        [t.cost_flops for t in ok],
        [t.loss for t in ok],
        out_dir / "pareto_frontier",
        failed_costs=[t.cost_flops for t in failed],
        target_flops=spec.target.flops,
        labels=FrontierLabels(
            title=f"{spec.name}: cost vs {spec.objective.metric}",
            loss_label=f"held-out {spec.objective.metric}",
        ),
    )
    curves, x_label = curves_of(trials)
    if curves:
        paths += plot_learning_curves(
            curves, out_dir / "learning_curves", x_label=x_label, title=spec.name
        )
    (out_dir / "trials.csv").write_text(trials_csv(trials))
    (out_dir / "trials.txt").write_text(format_table(trials) + "\n")
    return [*paths, out_dir / "trials.csv", out_dir / "trials.txt"]


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
