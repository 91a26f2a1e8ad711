"""`carbs fit runs.csv`: imported runs of a known law give back its compute-optimal loss and its
learning-rate optimum; a wrong column or filter is one line naming it, exit 2."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from experiments.cli import main

E, A, B, ALPHA, BETA = 1.8, 400.0, 2000.0, 0.34, 0.36


def lr_opt(n: float) -> float:
    return 3e-3 * (n / 1e8) ** -0.3


def true_loss(n: float, d: float, lr: float) -> float:
    reducible = A / n**ALPHA + B / d**BETA
    return E + reducible * (1 + 0.08 * math.log(lr / lr_opt(n)) ** 2)


def optimum(compute: float) -> tuple[float, float]:
    """(N, loss) at the compute-optimal size, lr at its optimum (grid over N)."""
    ns = np.exp(np.linspace(math.log(1e6), math.log(1e12), 4000))
    losses = [true_loss(float(n), compute / (6 * n), lr_opt(float(n))) for n in ns]
    i = int(np.argmin(losses))
    return float(ns[i]), float(losses[i])


@pytest.fixture(scope="module")
def runs_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """IsoFLOP-style runs at 1e17-1e19 FLOPs, three learning rates each, 0.5 % noise."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("fit") / "runs.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["params", "tokens", "lr", "loss", "group"])
        for c in np.exp(np.linspace(math.log(1e17), math.log(1e19), 5)):
            n_opt, _ = optimum(float(c))
            for n in n_opt * np.exp(np.linspace(-1.0, 1.0, 5)):
                d = c / (6 * n)
                for f_lr in (0.4, 1.0, 2.5):
                    lr = lr_opt(n) * f_lr
                    loss = true_loss(n, d, lr) * math.exp(rng.normal(0, 0.005))
                    w.writerow([n, d, lr, loss, "a"])
    return path


def test_fit_of_imported_runs_recovers_the_law(runs_csv: Path, tmp_path: Path) -> None:
    target = 1e21  # 100x the costliest run
    out = tmp_path / "fit.json"
    args = ["fit", str(runs_csv), "--target", str(target), "--settings", "lr", "--lr", "lr"]
    assert main([*args, "--bootstrap", "40", "--json", str(out)]) == 0
    got = json.loads(out.read_text())["target"]
    n_true, loss_true = optimum(target)
    assert abs(got["loss"] / loss_true - 1) < 0.02, (got["loss"], loss_true)
    assert got["loss_ci90"][0] <= loss_true <= got["loss_ci90"][1]
    assert 1 / 1.5 < got["size"] / n_true < 1.5, (got["size"], n_true)
    lr = got["optima"]["lr"]["value"]
    assert 1 / 1.5 < lr / lr_opt(got["size"]) < 1.5, (lr, lr_opt(got["size"]))


def test_bad_columns_and_filters_name_the_fix(
    runs_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fit", str(runs_csv), "--target", "1e21", "--size", "n_params"]) == 2
    assert "--size: no column 'n_params'" in capsys.readouterr().err
    assert main(["fit", str(runs_csv), "--target", "1e21", "--where", "group=b"]) == 2
    assert "no row has group = 'b'; it has a" in capsys.readouterr().err
    assert main(["fit", str(runs_csv.parent / "missing.csv"), "--target", "1e21"]) == 2
    assert "no such file" in capsys.readouterr().err
