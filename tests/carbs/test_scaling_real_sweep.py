"""The pick on a real CPU sweep: the 14 trials of one run of the demo (moe_tiny.yaml), as
measured. Few frontier runs make the backtest's error estimate huge; the interval must stay
honest (wide) without becoming meaningless."""

from __future__ import annotations

from pathlib import Path

from carbs.scaling.pick import pick_large_run
from carbs.scaling.types import TrialPoint
from experiments.spec import load_spec
from models.accounting import training_flops_for_params

SPEC = Path(__file__).resolve().parents[2] / "experiments" / "sweeps" / "moe_tiny.yaml"
KEYS = ("d_model", "n_layers", "n_experts", "top_k", "expert_hidden", "learning_rate", "tokens")
# (searched params in KEYS order, held-out loss), from `bash scripts/demo.sh` on 2 CPU cores
DEMO_TRIALS = [
    ((96, 2, 8, 2, 192, 0.004, 250000.0), 5.80885),
    ((96, 2, 8, 2, 160, 0.003589, 233685.904616), 5.49649),
    ((96, 2, 8, 2, 192, 0.003688, 283555.325626), 5.20865),
    ((96, 2, 8, 2, 160, 0.004019, 239284.596972), 5.48004),
    ((128, 2, 8, 2, 160, 0.004445, 249432.179508), 5.84667),
    ((96, 2, 8, 2, 160, 0.003845, 303630.225519), 5.64393),
    ((96, 2, 8, 2, 128, 0.003847, 285078.71924), 5.69295),
    ((96, 2, 8, 2, 160, 0.004019, 239284.596972), 5.851),
    ((96, 2, 4, 2, 128, 0.004253, 219441.390162), 5.79231),
    ((64, 2, 8, 2, 64, 0.002722, 174571.346089), 6.03435),
    ((96, 2, 8, 2, 256, 0.0033, 392744.703249), 4.92488),
    ((96, 2, 8, 2, 224, 0.003551, 222082.359258), 5.35293),
    ((96, 2, 8, 2, 160, 0.003589, 233685.904616), 5.58356),
    ((96, 2, 8, 2, 224, 0.002814, 339911.087003), 5.18293),
]


def test_demo_sweep_pick_is_consistent_and_its_interval_bounded() -> None:
    spec = load_spec(SPEC)
    space = spec.space()
    points = []
    for values, loss in DEMO_TRIALS:
        params = space.full(dict(zip(KEYS, values, strict=True)))
        points.append(TrialPoint(params, training_flops_for_params(params), loss))
    pick = pick_large_run(points, space, spec.target.flops, cost_fn=training_flops_for_params,
                          n_bootstrap=60)  # fmt: skip
    lo, hi = pick.predicted_loss_ci
    assert 0 < lo <= pick.predicted_loss <= hi <= max(loss for _, loss in DEMO_TRIALS)
    assert pick.predicted_loss < min(loss for _, loss in DEMO_TRIALS)  # 100x the compute helps
    p = pick.params
    assert training_flops_for_params(p) <= spec.target.flops * 1.01
    assert p["d_model"] % p["n_heads"] == 0 and p["top_k"] <= p["n_experts"]
    assert p["d_model"] >= 96  # width grows with compute, not only the experts
