"""The scaling model's validation suite: one command, one table.

    python benchmarks/scaling/suite.py                       # family (asktell) + real data + timing
    python benchmarks/scaling/suite.py family --how runner   # trials through `carbs run`'s runner
    python benchmarks/scaling/suite.py real timing           # only those parts

- `family`: the 24 generated ground-truth worlds of `carbs.testing.world_family` (forms differ:
  what each optimum follows, aspect optimum or none, MoE gain form, noise, divergence cliff).
  Trials come from the default optimizer under the protocol of `family_trials.py` (each <= 1e18
  FLOPs, 3e19 in all; cached); the pick is made at 1e20 (100x), with the roles a spec would
  name. Scored by the world's truth: regret = true loss of the pick / optimal loss - 1,
  prediction error = predicted / true - 1, whether the 90 % interval covers, whether it
  diverged. Beside it, per-parameter extrapolation: every searched value's log-linear law vs
  log compute over the Pareto-frontier trials, taken to the target, tokens solved for its cost.
- `real`: Chinchilla approach 3 (objective vs Epoch's global minimum), Gadre et al. 2024 (1.4B
  and 6.9B from <= 411M), Porian et al. 2024 tuned IsoFLOPs (top budgets from the lower ones).
- `timing`: one pick, 200 bootstrap replicates, on 1,000 observations of world 0.

Results go to benchmarks/results/scaling_suite.json (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.scaling import real_data  # noqa: E402
from benchmarks.scaling.family_trials import TARGET, Trial, scaling_roles, trials_of  # noqa: E402
from carbs.pareto import pareto_mask  # noqa: E402
from carbs.scaling.pick import FitOptions, Workload, pick_large_run  # noqa: E402
from carbs.scaling.types import TrialPoint  # noqa: E402
from carbs.testing.world_family import (  # noqa: E402
    FAMILY_SIZE,
    FamilyWorld,
    draw_world,
    trials_around_optimum,
)

OUT = Path("benchmarks/results/scaling_suite.json")
PARTS = ("family", "real", "timing")


def workload_of(world: FamilyWorld) -> Workload:
    """What the world's spec tells the pick: its cost, its parameter counter (half the worlds
    leave N to FLOPs / 6D, as `family_trials.spec_of` does) and its parameter roles."""
    size = world.active_params if world.index % 2 == 0 else None
    return Workload(world.cost, size, scaling_roles(world))


def per_parameter_extrapolation(world: FamilyWorld, trials: list[Trial]) -> dict[str, Any]:
    """The peers' baseline: each searched value follows its own law vs compute on the frontier."""
    space = world.space()
    ok = [t for t in trials if t.loss is not None]
    cost = np.array([t.cost for t in ok])
    front = [
        t for t, m in zip(ok, pareto_mask(cost, np.array([t.loss for t in ok])), strict=True) if m
    ]
    x = np.log([t.cost for t in front])
    tokens = world.form.name_of("tokens")
    cfg: dict[str, Any] = dict(space.fixed)
    for p in space.params:
        y = np.log([float(t.params[p.name]) for t in front])
        slope, icpt = np.polyfit(x, y, 1) if len(front) > 1 else (0.0, float(y[0]))
        cfg[p.name] = p.clamp(float(math.exp(icpt + slope * math.log(TARGET))))
    if world.form.experts_as == "count":
        k = world.form.name_of("top_k")
        cfg[k] = min(cfg[k], cfg[world.form.name_of("experts")])
    cfg[tokens] = TARGET / world.flops_per_token(cfg)
    return cfg


def score(world: FamilyWorld, cfg: dict[str, Any]) -> float:
    """Regret of a config at the target (inf where it diverges)."""
    true = world.true_loss(cfg)
    return true / world.optimal_loss(TARGET) - 1 if math.isfinite(true) else math.inf


def regret_parts(world: FamilyWorld, cfg: dict[str, Any]) -> dict[str, float]:
    """Where a pick's regret is (noise-free, share of the optimal loss): what resetting one
    setting to the world's optimum for the pick's own shape and tokens would save, and the
    regret left with every setting so reset ("shape and size")."""
    space, f, optimal = world.space(), world.form, world.optimal_loss(TARGET)
    loss = world.true_loss(cfg)
    if not math.isfinite(loss):
        return {}

    def reset(c: dict[str, Any], role: str) -> dict[str, Any]:
        name = f.name_of(role)
        out = dict(c)
        out[name] = (
            world.k.warm0 if role == "warmup" else space.param(name).clamp(world.optima(c)[role])
        )
        return out

    roles = [r for r in ("lr", "batch", "wd", "warmup") if f.name_of(r) in space.names]
    parts = {r: (loss - world.true_loss(reset(cfg, r))) / optimal for r in roles}
    every = dict(cfg)
    for r in roles:
        every = reset(every, r)
    parts["shape and size"] = world.true_loss(every) / optimal - 1
    return parts


def family(worlds: list[int], how: str, n_bootstrap: int) -> dict[str, Any]:
    rows = []
    for i in worlds:
        world = draw_world(i)
        trials = trials_of(world, 0, how)
        points = [TrialPoint(t.params, t.cost, t.loss, t.loss is None) for t in trials]
        t0 = time.perf_counter()
        pick = pick_large_run(
            points, world.space(), TARGET, workload_of(world), FitOptions(n_bootstrap=n_bootstrap)
        )
        seconds = time.perf_counter() - t0
        true = world.true_loss(pick.params)
        lo, hi = pick.predicted_loss_ci
        base = score(world, per_parameter_extrapolation(world, trials))
        row = {
            "world": i,
            "trials": len(trials),
            "regret": score(world, pick.params),
            "pred_err": pick.predicted_loss / true - 1 if math.isfinite(true) else math.inf,
            "covered": bool(lo <= true <= hi),
            "half_width": (hi - lo) / 2 / pick.predicted_loss,
            "diverged": not math.isfinite(true),
            "baseline_regret": base,
            "seconds": seconds,
            "structure": pick.fits["model"]["structure"],
            "regret_parts": regret_parts(world, dict(pick.params)),
        }
        rows.append(row)
        print(
            f"world {i:2d}: {len(trials):3d} trials  regret {100 * row['regret']:6.2f} %  "
            f"pred {100 * row['pred_err']:+6.2f} %  covered {row['covered']!s:5}  "
            f"+-{100 * row['half_width']:5.1f} %  per-param {100 * base:7.2f} %  "
            f"{seconds:5.1f} s",
            flush=True,
        )
    return {"how": how, "rows": rows, "summary": family_summary(rows)}


def family_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    reg = np.array([r["regret"] for r in rows])
    err = np.abs([r["pred_err"] for r in rows])
    base = np.array([r["baseline_regret"] for r in rows])
    return {
        "worlds": len(rows),
        "median_regret": float(np.median(reg)),
        "max_regret": float(np.max(reg)),
        "median_abs_pred_err": float(np.median(err)),
        "max_abs_pred_err": float(np.max(err)),
        "coverage": float(np.mean([r["covered"] for r in rows])),
        "median_half_width": float(np.median([r["half_width"] for r in rows])),
        "diverged": int(sum(r["diverged"] for r in rows)),
        "worse_than_per_parameter": int(np.sum(reg > base)),
        "median_per_parameter_regret": float(np.median(base)),
        "median_seconds": float(np.median([r["seconds"] for r in rows])),
        "regret_parts_median_mean": {
            k: [float(np.median(v)), float(np.mean(v))]
            for k in ("shape and size", "lr", "batch", "wd", "warmup")
            if (v := [r["regret_parts"][k] for r in rows if k in r["regret_parts"]])
        },
    }


def real(n_bootstrap: int) -> dict[str, Any]:
    if not real_data.available():
        print("real data: skipped (../shared/data not found)")
        return {"skipped": "../shared/data not found"}
    out = {
        "chinchilla": real_data.chinchilla(),
        "gadre": real_data.gadre(n_bootstrap),
        "porian": real_data.porian(n_bootstrap),
    }
    c, g, p = out["chinchilla"], out["gadre"], out["porian"]
    print(
        f"chinchilla: objective {c['objective']:.7e} (global minimum 1.018274e-3), {c['seconds']:.2f} s"
    )
    print(
        f"gadre: mean |err| {100 * g['mean_abs_error']:.2f} %, max {100 * g['max_abs_error']:.2f} %, "
        f"covered {g['covered']}/{len(g['runs'])}, median half-width "
        f"{100 * float(np.median([r['half_width'] for r in g['runs']])):.1f} %"
    )
    for b in p["budgets"]:
        print(
            f"porian {b['dataset']:>12} {b['flops']:.2e}: loss {100 * b['loss_error']:+.2f} %, "
            f"N_opt {b['size_ratio']:.2f}x, covered {b['covered']} (+-{100 * b['half_width']:.1f} %)"
        )
    return out


def timing(n: int = 1000, n_bootstrap: int = 200) -> dict[str, Any]:
    """One pick on `n` observations around world 0's frontier (1e16-1e18 FLOPs): at 40
    budgets, each world optimum (a Nelder-Mead search, ~1 s) shared by the runs around it,
    every run perturbed on its own (1,000 distinct budgets took 15 minutes to set up)."""
    world = draw_world(0)
    rng = np.random.default_rng(0)
    levels = np.exp(np.linspace(math.log(1e16), math.log(1e18), 40))
    budgets = rng.choice(levels, n)
    points = trials_around_optimum(world, budgets, rng)
    t0 = time.perf_counter()
    pick_large_run(
        points, world.space(), TARGET, workload_of(world), FitOptions(n_bootstrap=n_bootstrap)
    )
    seconds = time.perf_counter() - t0
    print(
        f"timing: one pick on {n} observations, {n_bootstrap} bootstrap replicates: {seconds:.1f} s"
    )
    return {"observations": n, "n_bootstrap": n_bootstrap, "seconds": seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("parts", nargs="*", help="family, real, timing (default: all three)")
    ap.add_argument("--worlds", type=int, nargs="+", default=list(range(FAMILY_SIZE)))
    ap.add_argument("--how", choices=["asktell", "runner"], default="asktell")
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args()
    unknown = set(a.parts) - set(PARTS)
    if unknown:
        ap.error(f"unknown part(s) {sorted(unknown)}: choose from {', '.join(PARTS)}")
    a.parts = a.parts or list(PARTS)
    results: dict[str, Any] = {}
    if "family" in a.parts:
        results["family"] = family(a.worlds, a.how, a.bootstrap)
        s = results["family"]["summary"]
        print(
            f"family ({s['worlds']} worlds): median regret {100 * s['median_regret']:.2f} % "
            f"(max {100 * s['max_regret']:.2f}), median |pred err| "
            f"{100 * s['median_abs_pred_err']:.2f} % (max {100 * s['max_abs_pred_err']:.2f}), "
            f"coverage {100 * s['coverage']:.0f} %, median half-width "
            f"{100 * s['median_half_width']:.1f} %, diverged {s['diverged']}, worse than "
            f"per-parameter on {s['worse_than_per_parameter']} (its median regret "
            f"{100 * s['median_per_parameter_regret']:.2f} %)"
        )
        print(
            "  regret by part, median / mean % of the optimal loss: "
            + ", ".join(
                f"{k} {100 * m:.2f} / {100 * a:.2f}"
                for k, (m, a) in s["regret_parts_median_mean"].items()
            )
        )
    if "real" in a.parts:
        results["real"] = real(a.bootstrap)
    if "timing" in a.parts:
        results["timing"] = timing(n_bootstrap=a.bootstrap)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
