"""`write_report` over a real SQLite store: the Pareto plot marks the target, and the learning
curves figure keeps validation and training loss apart, one legend entry per shown trial."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from experiments.report import write_report
from experiments.spec import parse_spec
from experiments.store.models import TrialStatus
from experiments.store.repository import Store
from experiments.store.trial_result import TrialResult

TOY = Path(__file__).resolve().parents[2] / "experiments" / "sweeps" / "toy_chinchilla.yaml"


def _texts(svg: Path) -> list[str]:
    return [t.strip() for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg.read_text())]


def test_report_writes_a_target_marked_frontier_and_learning_curves(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'r.db'}")
    text = TOY.read_text()
    sweep, _ = store.get_or_create_sweep("toy", parse_spec(text).model_dump(mode="json"), text)
    params = {"n_params": 1e6, "tokens": 1e7, "learning_rate": 1e-3}
    trials = store.create_trials(sweep.id, [(dict(params), None) for _ in range(14)])
    for i, t in enumerate(trials[:12]):
        curve = [
            {"step": s, "tokens": 1e6 * s, "train_loss": 5 - 0.1 * s - 0.01 * i,
             **({"val_loss": 5.1 - 0.1 * s - 0.01 * i} if s % 2 == 0 else {})}
            for s in range(1, 7)
        ]  # fmt: skip
        store.finish_trial(
            t.id,
            TrialResult(
                TrialStatus.SUCCEEDED, loss=4.5 - 0.01 * i, cost_flops=1e15 * (i + 1), curve=curve
            ),
        )
    store.mark_running(trials[12].id)
    store.add_curve_points(trials[12].id, [{"step": 1, "tokens": 1e6, "train_loss": 5.0}])
    paths = write_report(store, "toy", tmp_path / "out")
    store.dispose()

    names = {p.name for p in paths}
    assert {"pareto_frontier.svg", "learning_curves.png", "learning_curves.svg"} <= names
    target = yaml.safe_load(text)["target"]["flops"]
    frontier = _texts(tmp_path / "out" / "pareto_frontier.svg")
    assert f"target {target:.3g} FLOPs (8333x the costliest trial)" in frontier
    curves = _texts(tmp_path / "out" / "learning_curves.svg")
    assert (
        "validation loss (nats per token)" in curves and "training loss (nats per token)" in curves
    )
    assert "tokens seen" in curves
    # the best 10 of 12 finished (trial 11 lowest), in each panel; the running one only where
    # it reported (training loss)
    entries = [t for t in curves if re.fullmatch(r"#\d+ \(.*\)|#\d+ running", t)]
    assert entries.count("#11 (4.39)") == 2 and "#0 (4.5)" not in entries
    assert entries.count("#12 running") == 1
    assert len(entries) == 10 + 10 + 1
