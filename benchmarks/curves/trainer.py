"""Early stopping and decay branches against the plain sweep, on real tiny MoE trainings.

    python benchmarks/curves/trainer.py                  # 1 sweep seed + 3 repeat runs, ~7 min here
    python benchmarks/curves/trainer.py --seeds 0 1 2 --repeats 3

Both arms drive the same optimizer (`carbs.bayes.CarbsOptimizer`, exact price from
`models.accounting`, per-trial cap `--cap`) over d_model (32-128), learning rate and tokens of
the built-in `moe` workload (`models.workload.train_moe`: 2 layers, 4 experts top-2, vocab 512,
seq 64, batch 16, WSD schedule, fp32, one thread, the bundled stdlib corpus; 20-390 steps),
called in-process. Learning rates stop at 1e-2: at 7e-3 one config's final loss already spread
5.5 % over seeds (3.97-4.54) in a first run with batch 8.

- plain: every trial a full run, evaluated at its end, `--budget` training FLOPs in all;
- curves: `--share` of what the plain sweep spent; each trial is evaluated `EVALS` times,
  branches cool-downs at 25 % and 50 % of its tokens (observations of their own, charged their cool-down), and is
  stopped by `experiments.pruning.decide` (min_evals 3) when its curve cannot reach the
  frontier at its cost. As in the product, a stopped trial's branches are lost with it (its
  result never comes back) but their cool-downs are paid, and the optimizer is told its
  optimistic final loss as a bound (`Observation.bound`), branches as derived observations.

Scored per arm (there is no ground truth: everything is an observed validation loss):
- frontier: the best loss at cost <= cap and <= cap / 5;
- backtest: the reference is the best run either arm found at <= cap; fitted on the arm's
  runs costing <= a fifth of the reference's cost, the compute-optimal loss predicted at the
  reference's cost (a >= 5x extrapolation) against its loss, by Chinchilla approach 3 on the
  near-frontier runs and by the project's scaling model (`carbs.scaling.pick.pick_large_run`);
- compute: training FLOPs (the bill) and the same with evaluation forward passes counted.
`--repeats` retrains the reference config with other seeds: the seed noise of one final loss.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.curves.scoring import approach3_optimum, near_frontier  # noqa: E402
from carbs.bayes import CarbsOptimizer  # noqa: E402
from carbs.errors import ConfigFailure  # noqa: E402
from carbs.optimizer import Observation  # noqa: E402
from carbs.scaling.pick import FitOptions, Workload, pick_large_run  # noqa: E402
from carbs.scaling.types import TrialPoint  # noqa: E402
from carbs.space import Param, SearchSpace  # noqa: E402
from carbs.trial import TrialContext  # noqa: E402
from experiments.pruning import FinishedCurve, decide  # noqa: E402
from models.accounting import trained_tokens, training_flops_for_params  # noqa: E402
from models.branches import plan_branches  # noqa: E402
from models.workload import train_moe  # noqa: E402

FIXED: dict[str, Any] = {
    "n_layers": 2, "n_heads": 2, "n_kv_heads": 1, "n_experts": 4, "top_k": 2,
    "vocab_size": 512, "seq_len": 64, "batch_size": 16, "schedule": "wsd", "decay_frac": 0.2,
    "warmup_frac": 0.05, "precision": "float32", "corpus": "stdlib", "eval_tokens": 2048,
}  # fmt: skip
EVALS = 6
BRANCHES = (0.25, 0.5)
MIN_EVALS = 3


def space() -> SearchSpace:
    return SearchSpace(
        (
            Param("d_model", "log", 32, 128, center=48, multiple_of=16, scales_cost=True),
            Param("learning_rate", "log", 1e-3, 1e-2, center=3e-3),
            Param("tokens", "log", 2e4, 4e5, center=4e4, scales_cost=True),
        )
    )


def config(p: dict[str, Any]) -> dict[str, Any]:
    """What the workload gets: the fixed shape, experts twice d_model wide."""
    d = int(round(float(p["d_model"])))
    return {**FIXED, **p, "d_model": d, "expert_hidden": 2 * d, "tokens": int(p["tokens"])}


def price(p: dict[str, Any]) -> float:
    return training_flops_for_params(config(p))


def steps_of(p: dict[str, Any]) -> int:
    per = FIXED["batch_size"] * FIXED["seq_len"]
    return trained_tokens(float(p["tokens"]), FIXED["batch_size"], FIXED["seq_len"]) // per


def size(p: dict[str, Any]) -> float:
    """N such that the cost is 6 N D exactly (embedding, head and attention included)."""
    return price(p) / (6.0 * steps_of(p) * FIXED["batch_size"] * FIXED["seq_len"])


class Stopped(Exception):
    def __init__(self, step: int, bound: float) -> None:
        super().__init__(f"stopped at step {step}")
        self.step, self.bound = step, bound


def train_one(
    p: dict[str, Any], seed: int, curves: bool, finished: list[FinishedCurve]
) -> dict[str, Any]:
    """One trial: its final loss, branches and spend, or where the pruner stopped it."""
    steps, planned = steps_of(p), price(p)
    points: list[tuple[float, float]] = []

    def report(pt: dict[str, Any]) -> None:
        if "val_loss" not in pt:
            return
        points.append((float(pt["flops"]), float(pt["val_loss"])))
        if curves and (d := decide(points, planned, finished, MIN_EVALS)).prune:
            raise Stopped(int(pt["step"]), float(d.optimistic_loss))

    cfg = {**config(p), "eval_every": max(1, steps // EVALS) if curves else steps}
    if curves:
        cfg["branches"] = list(BRANCHES)
    ctx = TrialContext(seed=seed, report=report, extra={"num_threads": 1})
    per_step = planned / steps
    try:
        r = train_moe(cfg, ctx)
    except Stopped as s:
        plans = plan_branches(BRANCHES, steps, FIXED["warmup_frac"], FIXED["decay_frac"])
        cool = sum(b.steps - b.start for b in plans if b.start < s.step)
        return {"stopped": s.step, "spent": per_step * (s.step + cool), "points": points,
                "bound": s.bound}  # fmt: skip
    except ConfigFailure as exc:
        return {"failed": str(exc), "spent": planned, "points": points}
    spent = r["cost"] + sum(b["spent"] for b in r["branches"])
    return {"loss": r["loss"], "cost": r["cost"], "spent": spent, "points": points,
            "branches": r["branches"], "steps": steps}  # fmt: skip


def eval_flops(p: dict[str, Any], n_evals: int) -> float:
    """Forward FLOPs of `n_evals` evaluations (a third of a training step's per token)."""
    per_token = price(p) / (steps_of(p) * FIXED["batch_size"] * FIXED["seq_len"])
    return n_evals * FIXED["eval_tokens"] * per_token / 3.0


def run_arm(seed: int, budget: float, cap: float, curves: bool, max_trials: int) -> dict:
    """One sweep until `budget` training FLOPs are spent; its runs (full and branch)."""
    opt = CarbsOptimizer(space(), seed=seed, price=price, max_suggestion_cost=cap,
                         max_total_cost=budget, max_trials=max_trials)  # fmt: skip
    lo, hi = space().param("tokens").min, space().param("tokens").max
    runs: list[dict] = []
    finished: list[FinishedCurve] = []
    spent = evals = 0.0
    trials = n_pruned = 0
    while spent < budget and trials < max_trials:
        (s,) = opt.suggest(1)
        p = dict(s.params)
        out = train_one(p, 1000 * seed + trials, curves, finished)
        trials += 1
        spent += out["spent"]
        evals += eval_flops(p, len(out["points"]))
        if "loss" not in out:
            if "failed" in out:
                opt.observe(Observation(p, price(p), None, failed=True,
                                        suggestion_id=s.suggestion_id))  # fmt: skip
            else:  # told as the driver's rebuild tells it: its optimistic loss, a bound
                n_pruned += 1
                opt.observe(Observation(p, price(p), out["bound"], suggestion_id=s.suggestion_id,
                                        spent=out["spent"], bound=True))  # fmt: skip
            continue
        for b in out["branches"]:
            bp = {**p, "tokens": float(b["tokens"])}
            runs.append({"params": bp, "cost": b["cost"], "loss": b["loss"], "kind": "branch"})
            if lo <= b["tokens"] <= hi:
                opt.observe(Observation(bp, b["cost"], b["loss"], spent=b["spent"], derived=True))
        runs.append({"params": p, "cost": out["cost"], "loss": out["loss"], "kind": "full"})
        pts = [*out["points"][:-1], (out["points"][-1][0], out["loss"])]
        finished.append(FinishedCurve(pts, out["loss"], out["cost"]))
        opt.observe(Observation(p, out["cost"], out["loss"], suggestion_id=s.suggestion_id))
        print(f"  {'curves' if curves else 'plain'} trial {trials}: spent {spent:.3g}", flush=True)
    return {"runs": runs, "spent": spent, "eval_flops": evals, "trials": trials,
            "pruned": n_pruned}  # fmt: skip


def best_at(runs: list[dict], cost: float) -> dict | None:
    ok = [r for r in runs if r["cost"] <= cost * (1 + 1e-9)]
    return min(ok, key=lambda r: r["loss"]) if ok else None


def backtest(runs: list[dict], fit_cost: float, ref: dict) -> dict[str, float]:
    """Relative error of the loss predicted at the reference's cost from runs <= fit_cost."""
    train = [r for r in runs if r["cost"] <= fit_cost * (1 + 1e-9)]
    out = {"fit_runs": float(len(train))}
    near = near_frontier(train)
    if len(near) >= 5:
        n = np.array([size(r["params"]) for r in near])
        d = np.array([r["cost"] / (6.0 * size(r["params"])) for r in near])
        pred = approach3_optimum(n, d, np.array([r["loss"] for r in near]), ref["cost"])
        out["approach3"] = pred / ref["loss"] - 1
    if len(train) < 3:
        return out
    try:
        pts = [TrialPoint(config(r["params"]), r["cost"], r["loss"], False) for r in train]
        work = Workload(cost_fn=price, size_fn=size)
        pick = pick_large_run(pts, space_full(), ref["cost"], work, FitOptions(n_bootstrap=20))
        out["model"] = pick.predicted_loss / ref["loss"] - 1
    except ValueError as exc:
        print(f"  scaling model: {exc}")
    return out


def space_full() -> SearchSpace:
    s = space()
    return SearchSpace(s.params, fixed=dict(FIXED))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="*", default=[0])
    ap.add_argument("--budget", type=float, default=1.2e12)
    ap.add_argument("--cap", type=float, default=1.2e11)
    ap.add_argument("--share", type=float, default=0.6)
    ap.add_argument("--max-trials", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/curves_trainer.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for seed in args.seeds:
        arms = {}
        for arm in ("plain", "curves"):
            # the curves arm gets `share` of what the plain sweep actually spent (it may end by
            # its trial count short of its budget)
            budget = args.budget if arm == "plain" else args.share * arms["plain"]["spent"]
            t0 = time.perf_counter()
            arms[arm] = run_arm(seed, budget, args.cap, arm == "curves", args.max_trials)
            arms[arm]["wall_s"] = time.perf_counter() - t0
        rows.append(score_seed(seed, arms, args))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"args": vars(args), "rows": rows}))
    noise = repeat_noise(rows, args.repeats)
    summary = summarize(rows, noise)
    print(json.dumps(summary, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"args": vars(args), "rows": rows, "summary": summary}))


def score_seed(seed: int, arms: dict[str, dict], args: argparse.Namespace) -> dict:
    """Both arms' frontier, backtest and compute for one sweep seed (reference pooled)."""
    ref = best_at(arms["plain"]["runs"] + arms["curves"]["runs"], args.cap)
    row: dict[str, Any] = {"seed": seed, "reference": ref}
    for arm, r in arms.items():
        b5 = best_at(r["runs"], args.cap / 5)
        row[arm] = {
            "spent": r["spent"], "eval_flops": r["eval_flops"], "trials": r["trials"],
            "pruned": r["pruned"], "runs": len(r["runs"]), "wall_s": r["wall_s"],
            "best_cap": best_at(r["runs"], args.cap)["loss"],
            "best_cap_5": b5["loss"] if b5 else math.nan,
            "backtest": backtest(r["runs"], ref["cost"] / 5, ref), "all_runs": r["runs"],
        }  # fmt: skip
    p, c = row["plain"], row["curves"]
    print(
        f"seed {seed}: best@cap {p['best_cap']:.4f} / {c['best_cap']:.4f}, best@cap/5 "
        f"{p['best_cap_5']:.4f} / {c['best_cap_5']:.4f} | backtest {p['backtest']} / "
        f"{c['backtest']} | compute {c['spent'] / p['spent']:.2f}x (with evals "
        f"{(c['spent'] + c['eval_flops']) / (p['spent'] + p['eval_flops']):.2f}x) | trials "
        f"{p['trials']} / {c['trials']} ({c['pruned']} pruned) runs {p['runs']} / {c['runs']}",
        flush=True,
    )
    return row


def repeat_noise(rows: list[dict], repeats: int) -> dict[str, Any]:
    """The first seed's reference config retrained with `repeats` other seeds."""
    if repeats <= 0 or not rows:
        return {}
    ref = rows[0]["reference"]
    p = {k: v for k, v in ref["params"].items()}
    losses = [ref["loss"]]
    for k in range(repeats):
        out = train_one(p, 777 + k, False, [])
        losses.append(out["loss"])
    sd = statistics.stdev(losses)
    return {"config": p, "losses": losses, "relative_sd": sd / statistics.mean(losses)}


def summarize(rows: list[dict], noise: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"repeat_noise": noise}
    for arm in ("plain", "curves"):
        out[arm] = {
            k: statistics.median(r[arm][k] for r in rows)
            for k in ("best_cap", "best_cap_5", "spent", "trials", "pruned", "runs")
        }
        for kind in ("approach3", "model"):
            errs = [abs(r[arm]["backtest"][kind]) for r in rows if kind in r[arm]["backtest"]]
            out[arm][f"abs_{kind}_err"] = statistics.median(errs) if errs else math.nan
    out["compute_ratio"] = [r["curves"]["spent"] / r["plain"]["spent"] for r in rows]
    return out


if __name__ == "__main__":
    main()
