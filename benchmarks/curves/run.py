"""Early stopping and decay branches against the plain sweep, on synthetic learning curves.

    python benchmarks/curves/run.py --worlds 0 1 2 3 4 5 6 7 --seeds 1   # ~25 min here
    python benchmarks/curves/run.py --worlds 0 1 --seeds 1 --cache benchmarks/results/curves_cache

A world is a Chinchilla-like loss (E, A, alpha, B, beta drawn per world) times an lr penalty
around an optimum that moves with size, with 0.5 % noise per run. Its WSD curves: before the
cool-down a run at t tokens sits `stable_gap` (2-6 %, per world) above the final loss of a run
that long; the cool-down removes the gap. Both arms drive the same optimizer
(`carbs.bayes.CarbsOptimizer`, exact price 6 N D, per-trial cap `--cap`) sequentially until
their budget is spent:

- plain: every trial is one full run, `--budget` FLOPs in all;
- curves: `--share` of that budget; each trial reports 10 evaluations (the stable-phase curve),
  branches cool-downs at 25 % and 50 % of its tokens (observations of their own, told to the
  optimizer as derived, each costing its cool-down only) and is stopped by
  `experiments.pruning.decide` when its curve cannot reach the frontier at its cost (charged
  the tokens it trained and the cool-downs it had cut; as in the product, whose stopped task
  never returns its result, its branches are lost with it; told as a config tried with what it
  spent).

Scored: the frontier gap (best noise-free loss at cost <= C over the true optimum at C) at the
cap and a tenth of it, and at `--target-factor` x the cap: the fit error of Chinchilla approach
3 (`carbs.scaling.laws.fit_chinchilla`) on each arm's near-frontier observations (within 2 % of
the best observed at no more cost), its compute-optimal loss against the world's true optimum;
the same median over 20 fresh noise draws on the arm's runs (`fit_error_redrawn`: one draw's
error is mostly luck); and what users get, the project's scaling model
(`carbs.scaling.pick.pick_large_run`) on every observation: its predicted loss against the
optimum (`model_error`) and its pick's true regret (`model_regret`). `--cache` keeps the plain
arm's sweeps (they do not depend on the curves settings). Target (issue 22): the curves arm's
fit error no worse than plain's for at most 60 % of its compute.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.curves.scoring import approach3_optimum, near_frontier  # noqa: E402
from carbs.bayes import CarbsOptimizer  # noqa: E402
from carbs.optimizer import Observation  # noqa: E402
from carbs.scaling.pick import FitOptions, Workload, pick_large_run  # noqa: E402
from carbs.scaling.types import TrialPoint  # noqa: E402
from carbs.space import Param, SearchSpace  # noqa: E402
from experiments.pruning import FinishedCurve, decide  # noqa: E402

EVALS = 10  # evaluations per trial, evenly spaced in tokens
BRANCHES = (0.25, 0.5)
DECAY_FRAC = 0.2
MAX_TRIALS = 60  # per arm, stopped trials included (as the product's budget counts them)


@dataclass(frozen=True)
class World:
    e: float
    a: float
    alpha: float
    b: float
    beta: float
    lr_coef: float
    stable_gap: float

    @classmethod
    def draw(cls, index: int) -> World:
        r = np.random.default_rng([2026, index])
        return cls(
            e=float(r.uniform(1.6, 2.0)),
            a=float(r.uniform(300, 600)),
            alpha=float(r.uniform(0.30, 0.38)),
            b=float(r.uniform(300, 2000)),
            beta=float(r.uniform(0.26, 0.34)),
            lr_coef=float(r.uniform(0.04, 0.1)),
            stable_gap=float(r.uniform(0.02, 0.06)),
        )

    def lr_opt(self, n: float) -> float:
        return 3e-3 * (n / 1e7) ** -0.3

    def loss(self, n: float, d: float, lr: float) -> float:
        """Final (cooled-down) loss of a run of d tokens."""
        base = self.e + self.a / n**self.alpha + self.b / d**self.beta
        return base * (1 + self.lr_coef * math.log(lr / self.lr_opt(n)) ** 2)

    def optimum(self, cost: float) -> float:
        ns = np.exp(np.linspace(math.log(1e5), math.log(1e12), 4001))
        ds = cost / (6 * ns)
        vals = self.e + self.a / ns**self.alpha + self.b / ds**self.beta
        return float(vals.min())


def space() -> SearchSpace:
    return SearchSpace(
        (
            Param("n_params", "log", 1e6, 1e9, center=1e7, scales_cost=True),
            Param("tokens", "log", 1e8, 1e11, center=3e8, scales_cost=True),
            Param("lr", "log", 1e-4, 3e-2, center=2e-3),
        )
    )


def price(p: dict) -> float:
    return 6.0 * p["n_params"] * p["tokens"]


def curve_trial(
    world: World, p: dict, full: float, rng: np.random.Generator, finished: list[FinishedCurve]
) -> dict:
    """One trial with a curve and branches: evaluated `EVALS` times, stopped by the pruner when
    hopeless. As in the product, a stopped trial's result never comes back, so its branches are
    lost with it (their cool-downs are paid)."""
    n, d, lr = p["n_params"], p["tokens"], p["lr"]
    points, stopped_at = [], None
    for k in range(1, EVALS + 1):
        t = d * k / EVALS
        y = world.loss(n, t, lr) * (1 + world.stable_gap) * (1 + 0.003 * rng.normal())
        points.append((6 * n * t, y))
        decision = decide(points, price(p), finished, min_evals=3)
        if k < EVALS and decision.prune:
            stopped_at = t
            break
    trained = d if stopped_at is None else stopped_at
    spent, branches = 6 * n * trained, []
    for f in BRANCHES:  # cool-downs cut before the stop (they start at (1 - decay) f d)
        if (1 - DECAY_FRAC) * f * d > trained:
            continue
        bd = f * d
        spent += 6 * n * DECAY_FRAC * bd
        y = world.loss(n, bd, lr) * (1 + 0.005 * rng.normal())
        branches.append((bd, y, 6 * n * DECAY_FRAC * bd))
    if stopped_at is not None:
        bound = decision.optimistic_loss
        return {"spent": spent, "stopped_at": stopped_at, "branches": [], "bound": bound}
    points[-1] = (points[-1][0], full)  # the run's own cool-down ends at its final loss
    finished.append(FinishedCurve(points, full, price(p)))
    return {"spent": spent, "stopped_at": None, "branches": branches}


def run_arm(
    world: World,
    seed: int,
    budget: float,
    cap: float,
    curves: bool,
    bounds: bool = True,
) -> dict:
    """One sweep of at most `max_trials` trials (stopped ones count) until `budget` is spent;
    returns its observations (n, d, lr, observed loss, cost axis) and spend. The optimizer is
    told what the driver would tell it: branches as derived observations, stopped trials as
    their optimistic final loss as a bound (`bounds`), else as configs tried with what they
    spent."""
    max_trials = MAX_TRIALS
    opt = CarbsOptimizer(
        space(),
        seed=seed,
        price=price,
        max_suggestion_cost=cap,
        max_total_cost=budget,
        max_trials=max_trials,
    )
    rng = np.random.default_rng([seed, 7])
    lo, hi = space().param("tokens").min, space().param("tokens").max
    obs: list[dict] = []
    finished: list[FinishedCurve] = []
    pruned: list[dict] = []
    stopped: list[dict] = []
    spent, pruned_spent, trials = 0.0, 0.0, 0
    while spent < budget and trials < max_trials:
        (s,) = opt.suggest(1, tried=[] if bounds else pruned, tried_spent=pruned_spent)
        if os.environ.get("CURVES_DEBUG"):
            print(f"  trial {trials} spent {spent:.3g} pruned {len(pruned)}", flush=True)
        p = dict(s.params)
        n, d, lr = p["n_params"], p["tokens"], p["lr"]
        full = world.loss(n, d, lr) * (1 + 0.005 * rng.normal())
        trials += 1
        if not curves:
            spent += price(p)
            opt.observe(Observation(p, price(p), full, suggestion_id=s.suggestion_id))
            obs.append({"n": n, "d": d, "lr": lr, "loss": full, "cost": price(p), "kind": "full"})
            continue
        t = curve_trial(world, p, full, rng, finished)
        spent += t["spent"]
        if t["stopped_at"] is not None:
            pruned.append(p)
            stopped.append({"n": n, "d": d, "lr": lr, "trained": t["stopped_at"]})
            if bounds:  # as the driver's rebuild tells it: its optimistic loss, a bound
                opt.observe(Observation(p, price(p), t["bound"], suggestion_id=s.suggestion_id,
                                        spent=t["spent"], bound=True))  # fmt: skip
            else:
                pruned_spent += t["spent"]
            continue
        for bd, y, spent_b in t["branches"]:
            told = lo <= bd <= hi
            obs.append({"n": n, "d": bd, "lr": lr, "loss": y, "cost": 6 * n * bd,
                        "kind": "branch", "told": told})  # fmt: skip
            if told:
                b = {**p, "tokens": bd}
                opt.observe(Observation(b, 6 * n * bd, y, spent=spent_b, derived=True))
        opt.observe(Observation(p, price(p), full, suggestion_id=s.suggestion_id))
        obs.append({"n": n, "d": d, "lr": lr, "loss": full, "cost": price(p), "kind": "full"})
    return {"obs": obs, "spent": spent, "trials": trials, "pruned": len(pruned),
            "stopped": stopped}  # fmt: skip


def frontier_gap(world: World, obs: list[dict], cost: float) -> float:
    """Best noise-free loss among observations costing <= cost, over the true optimum there."""
    vals = [world.loss(o["n"], o["d"], o["lr"]) for o in obs if o["cost"] <= cost * (1 + 1e-9)]
    return min(vals) / world.optimum(cost) - 1 if vals else math.inf


def fit_error(world: World, obs: list[dict], target: float) -> float:
    """|predicted compute-optimal loss at `target` / true - 1| from Chinchilla approach 3 on the
    near-frontier observations."""
    near = near_frontier(obs)
    if len(near) < 5:
        return math.inf
    n, d = np.array([o["n"] for o in near]), np.array([o["d"] for o in near])
    pred = approach3_optimum(n, d, np.array([o["loss"] for o in near]), target)
    return abs(pred / world.optimum(target) - 1)


def fit_error_redrawn(world: World, obs: list[dict], target: float, draws: int = 20) -> float:
    """The median of `fit_error` over `draws` fresh draws of every observation's noise on the
    same runs: the error this design of runs gives, without the luck of one draw (one draw's
    error spread 0.1-3.5 % on the same plain design here)."""
    rng = np.random.default_rng([len(obs), 11])
    errs = []
    for _ in range(draws):
        redrawn = [
            dict(o, loss=world.loss(o["n"], o["d"], o["lr"]) * (1 + 0.005 * rng.normal()))
            for o in obs
        ]
        errs.append(fit_error(world, redrawn, target))
    return float(np.median(errs))


def model_scores(world: World, obs: list[dict], target: float) -> dict[str, float]:
    """What users get: the project's scaling model (`carbs.scaling.pick`) fitted to every
    observation; its predicted loss at `target` against the world's optimum there
    (|error|), and the true loss of the config it picks over that optimum (regret)."""
    pts = [
        TrialPoint({"n_params": o["n"], "tokens": o["d"], "lr": o["lr"]}, o["cost"], o["loss"])
        for o in obs
    ]
    work = Workload(cost_fn=price, size_fn=lambda p: float(p["n_params"]))
    try:
        pick = pick_large_run(pts, space(), target, work, FitOptions(n_bootstrap=20))
    except ValueError:
        return {"model_error": math.inf, "model_regret": math.inf}
    p, best = pick.params, world.optimum(target)
    return {
        "model_error": abs(pick.predicted_loss / best - 1),
        "model_regret": world.loss(p["n_params"], p["tokens"], p["lr"]) / best - 1,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worlds", type=int, nargs="*", default=list(range(8)))
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--budget", type=float, default=1e19)
    ap.add_argument("--cap", type=float, default=1e18)
    ap.add_argument("--share", type=float, default=0.6, help="curves arm's budget / plain's")
    ap.add_argument("--target-factor", type=float, default=10.0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/curves.json"))
    ap.add_argument(
        "--cache", default=None, help="folder: reuse the plain arm's sweeps across runs"
    )
    ap.add_argument(
        "--no-bounds",
        action="store_true",
        help="tell stopped trials only as configs tried (the product before bounds)",
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for w in args.worlds:
        for seed in range(args.seeds):
            rows.append(score_row(w, seed, args))
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps({"args": vars(args), "rows": rows}))
    summary = summarize(rows)
    print(json.dumps(summary, indent=1))
    Path(args.out).write_text(json.dumps({"args": vars(args), "rows": rows, "summary": summary}))


def sweep(world: World, w: int, seed: int, args: argparse.Namespace, arm: str) -> dict:
    """One arm's sweep; the plain arm's is read from (and written to) `--cache` when given: it
    does not depend on the curves settings."""
    path = None
    if args.cache and arm == "plain":
        path = Path(args.cache) / f"plain_w{w}_s{seed}_{args.budget:g}_{args.cap:g}.json"
        if path.exists():
            return json.loads(path.read_text())
    budget = args.budget if arm == "plain" else args.share * args.budget
    t0 = time.perf_counter()
    r = run_arm(world, seed, budget, args.cap, arm == "curves", not args.no_bounds)
    r["wall_s"] = time.perf_counter() - t0
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(r))
    return r


def score_row(w: int, seed: int, args: argparse.Namespace) -> dict:
    """Both arms of one world and seed, scored (see the module docstring)."""
    world = World.draw(w)
    row: dict = {"world": w, "seed": seed}
    target = args.target_factor * args.cap
    for arm in ("plain", "curves"):
        r = sweep(world, w, seed, args, arm)
        row[arm] = {
            "spent": r["spent"],
            "trials": r["trials"],
            "pruned": r["pruned"],
            "observations": len(r["obs"]),
            "gap_cap": frontier_gap(world, r["obs"], args.cap),
            "gap_cap_10": frontier_gap(world, r["obs"], args.cap / 10),
            "fit_error": fit_error(world, r["obs"], target),
            "fit_error_redrawn": fit_error_redrawn(world, r["obs"], target),
            **model_scores(world, r["obs"], target),
            "wall_s": r["wall_s"],
            "obs": r["obs"],
            "stopped": r.get("stopped", []),
        }
    p, c = row["plain"], row["curves"]
    print(
        f"world {w} seed {seed}: fit error plain {100 * p['fit_error']:.2f} % vs curves "
        f"{100 * c['fit_error']:.2f} % (redrawn {100 * p['fit_error_redrawn']:.2f} / "
        f"{100 * c['fit_error_redrawn']:.2f} %) | model {100 * p['model_error']:.2f} / "
        f"{100 * c['model_error']:.2f} %, regret {100 * p['model_regret']:.2f} / "
        f"{100 * c['model_regret']:.2f} % | gap@cap {100 * p['gap_cap']:.2f} / "
        f"{100 * c['gap_cap']:.2f} % | compute {c['spent'] / p['spent']:.2f}x | "
        f"trials {p['trials']} / {c['trials']} ({c['pruned']} pruned), obs "
        f"{p['observations']} / {c['observations']}",
        flush=True,
    )
    return row


def summarize(rows: list[dict]) -> dict:
    summary: dict = {}
    for arm in ("plain", "curves"):
        summary[arm] = {
            k: statistics.median(r[arm][k] for r in rows)
            for k in ("fit_error", "fit_error_redrawn", "model_error", "model_regret", "gap_cap",
                      "gap_cap_10", "spent", "observations", "pruned")
        }  # fmt: skip
    for k in ("fit_error", "fit_error_redrawn", "model_error", "model_regret"):
        wins = sum(r["curves"][k] <= r["plain"][k] for r in rows)
        summary[f"curves_no_worse_{k}"] = f"{wins} of {len(rows)}"
    summary["compute_ratio_median"] = statistics.median(
        r["curves"]["spent"] / r["plain"]["spent"] for r in rows
    )
    return summary


if __name__ == "__main__":
    main()
