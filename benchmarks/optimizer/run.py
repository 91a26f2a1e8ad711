"""Optimizer benchmark: suggest latency and cost-to-frontier against baselines.

    python benchmarks/optimizer/run.py latency            # suggest time vs. #observations, 10-D
    python benchmarks/optimizer/run.py quality --seeds 5  # cost to reach the frontier
    python benchmarks/optimizer/run.py all
    python benchmarks/optimizer/run.py family --methods carbs,imbue --seeds 5 --trials 30

Results are printed and written as JSON under benchmarks/results/ (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.optimizer import family_bench  # noqa: E402
from benchmarks.optimizer.drivers import cost_to_frontier, run_native, run_optuna  # noqa: E402
from benchmarks.optimizer.problems import make  # noqa: E402
from carbs.bayes import CarbsOptimizer  # noqa: E402
from carbs.optimizer import Observation  # noqa: E402
from carbs.space import Param, SearchSpace  # noqa: E402


def latency(sizes: list[int], steps: int) -> list[dict]:
    """Cold suggest (fresh optimizer, replayed data: pays the full hyperparameter fit), the
    steady-state mean over `steps` observe+suggest rounds (warm hyperparameters, periodic refits
    included), on a 10-D problem."""
    space = SearchSpace(
        tuple(Param(f"x{i}", "linear", 0.0, 1.0, scale=0.25) for i in range(9))
        + (Param("size", "log", 1.0, 1000.0, center=10.0),)
    )
    rng = np.random.default_rng(0)

    def f(p: dict) -> tuple[float, float]:
        x = np.array([p[f"x{i}"] for i in range(9)])
        s = p["size"]
        return float(1 + ((x - 0.3 - 0.05 * np.log10(s)) ** 2).sum() + 2 / s**0.5), float(s)

    rows = []
    for n in sizes:
        obs = []
        for _ in range(n):
            p = {f"x{i}": float(rng.uniform()) for i in range(9)}
            p["size"] = float(10 ** rng.uniform(0, 3))
            loss, cost = f(p)
            obs.append(Observation(p, cost, loss))
        opt = CarbsOptimizer(space, seed=0)
        for o in obs:
            opt.observe(o)
        t = time.perf_counter()
        (s,) = opt.suggest(1)
        cold = time.perf_counter() - t
        times = []
        for _ in range(steps):
            loss, cost = f(s.params)
            opt.observe(Observation(s.params, cost, loss, suggestion_id=s.suggestion_id))
            t = time.perf_counter()
            (s,) = opt.suggest(1)
            times.append(time.perf_counter() - t)
        row = {
            "observations": n,
            "cold_s": cold,
            "steady_mean_s": statistics.mean(times),
            "steady_median_s": statistics.median(times),
            "steady_max_s": max(times),
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


TOLERANCES = (0.01, 0.02, 0.05)


def final_gaps(trace, problem) -> list[float]:
    """Per budget C: min over trials costing <= C of true loss / frontier(C) - 1."""
    c = np.asarray(trace.costs)
    y = np.asarray(trace.true_losses)
    out = []
    for b in problem.budgets:
        m = (c <= b) & np.isfinite(y)
        out.append(float((y[m] / problem.frontier(b) - 1).min()) if m.any() else math.inf)
    return out


def gap_breakdown(trace, problem) -> list[dict[str, float]]:
    """Per budget C, why the best trial under C misses the frontier: its cost as a fraction of C
    (a cheaper run cannot reach frontier(C) however well tuned) and its gap to the frontier at
    its own cost (how well its other hyperparameters are tuned)."""
    c = np.asarray(trace.costs)
    y = np.asarray(trace.true_losses)
    out = []
    for b in problem.budgets:
        m = np.where((c <= b) & np.isfinite(y))[0]
        if not len(m):
            out.append({"cost_fraction": math.nan, "own_cost_gap": math.inf})
            continue
        i = int(m[np.argmin(y[m])])
        out.append(
            {
                "cost_fraction": float(c[i] / b),
                "own_cost_gap": float(y[i] / problem.frontier(float(c[i])) - 1),
            }
        )
    return out


def quality(
    problems: list[str],
    methods: list[str],
    seeds: int,
    trials: int,
    batch: int,
    settings: dict | None = None,
) -> list[dict]:
    rows = []
    for name in problems:
        for method in methods:
            costs, secs, by_tol, gaps, why = [], [], {t: [] for t in TOLERANCES}, [], []
            totals = []
            for seed in range(seeds):
                problem = make(name, seed)
                if method in ("tpe", "gp"):
                    trace = run_optuna(problem, method, seed, trials, batch)
                elif method == "carbs_capped":  # the user states the largest cost they care about
                    cap = {**(settings or {}), "max_suggestion_cost": 3 * max(problem.budgets)}
                    trace = run_native(problem, "carbs", seed, trials, batch, cap)
                elif method == "carbs":
                    trace = run_native(problem, method, seed, trials, batch, settings)
                else:
                    trace = run_native(problem, method, seed, trials, batch)
                costs.append(cost_to_frontier(trace, problem))
                for t in TOLERANCES:
                    by_tol[t].append(cost_to_frontier(trace, problem, tol=t))
                gaps.append(final_gaps(trace, problem))
                why.append(gap_breakdown(trace, problem))
                totals.append(
                    float(sum(trace.costs))
                )  # a lower bound on cost-to-reach if unreached
                secs.append(trace.suggest_seconds)
            med = statistics.median(costs)
            row = {
                "problem": name,
                "method": method,
                "median_cost_to_frontier": med,
                "cost_to_frontier": costs,
                "reached": sum(math.isfinite(c) for c in costs),
                "median_cost_by_tolerance": {
                    str(t): statistics.median(v) for t, v in by_tol.items()
                },
                "cost_by_tolerance": {str(t): v for t, v in by_tol.items()},
                "total_cost": totals,
                "median_final_gap_by_budget": {
                    f"{c:.0e}": statistics.median(g[i] for g in gaps)
                    for i, c in enumerate(problem.budgets)
                },
                "final_gaps": gaps,
                "gap_breakdown": why,
                "seeds": seeds,
                "trials": trials,
                "batch": batch,
                "settings": settings or {},
                "suggest_seconds_per_trial": statistics.mean(secs) / trials,
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def family_command(a: argparse.Namespace) -> None:
    """Our CARBS against Imbue's (and baselines) on the problem family, sequential trials."""
    ours_root, ours_label = family_bench.snapshot(
        Path(a.ours_root), ROOT / "benchmarks/results/family_snapshots"
    )
    print(f"ours: {a.ours_root} at {ours_label}, copied to {ours_root}", file=sys.stderr)
    setup = family_bench.Setup(
        ours_root=ours_root,
        ours_label=ours_label,
        imbue_python=Path(a.imbue_python),
        cache_dir=ROOT / "benchmarks/results/family_cache",
        cached_only=a.cached_only,
    )
    problems = (a.problems or ",".join(family_bench.family.PROBLEMS)).split(",")
    methods = (a.methods or "carbs,imbue").split(",")
    t = time.perf_counter()
    rows = family_bench.run_family(setup, problems, methods, a.seeds, a.trials or 30)
    report = family_bench.table(rows)
    print(report)
    out = Path(a.out or ROOT / "benchmarks/results/family.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "wall_s": time.perf_counter() - t}, indent=1))
    out.with_suffix(".md").write_text(report + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("what", choices=["latency", "quality", "all", "family"])
    ap.add_argument("--sizes", default="20,100,300,1000,2000")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument(
        "--problems", help="default: scaling_world,hartmann6,branin (family: all its forms)"
    )
    ap.add_argument(
        "--methods", help="default: carbs,carbs_capped,tpe,gp,random (family: carbs,imbue)"
    )
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--trials", type=int, help="default: 120 (family: 30)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 avoids contention)")
    ap.add_argument(
        "--settings", default="{}", help="JSON settings for the carbs methods (e.g. an ablation)"
    )
    ap.add_argument("--out", help="default: benchmarks/results/optimizer.json (family.json)")
    ap.add_argument(
        "--ours-root", default="/work/main", help="family: the repo whose carbs package is ours"
    )
    ap.add_argument("--imbue-python", default="/tmp/imbue-venv/bin/python")
    ap.add_argument(
        "--cached-only", action="store_true", help="family: tabulate cached runs, run nothing"
    )
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.what == "family":
        family_command(a)
        return
    a.problems = a.problems or "scaling_world,hartmann6,branin"
    a.methods = a.methods or "carbs,carbs_capped,tpe,gp,random"
    a.out = a.out or str(ROOT / "benchmarks/results/optimizer.json")
    a.trials = a.trials or 120
    result: dict = {}
    if a.what in ("latency", "all"):
        result["latency"] = latency([int(s) for s in a.sizes.split(",")], a.steps)
    if a.what in ("quality", "all"):
        result["quality"] = quality(
            a.problems.split(","),
            a.methods.split(","),
            a.seeds,
            a.trials,
            a.batch,
            json.loads(a.settings),
        )
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
