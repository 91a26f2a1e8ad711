"""Side-by-side runs of our CARBS and Imbue's on the problem family (`family.py`).

Each (method, problem, seed) run is one subprocess of `carbs_driver.py` in the method's venv:
Imbue's in its own venv (a benchmark-only dependency), ours in the current interpreter with a
snapshot of `ours_root`'s carbs/ on PYTHONPATH. Runs are cached as JSON under
benchmarks/results/family_cache/: Imbue's by (problem, seed, trials) (its code never changes),
ours also by the code version of the snapshot, so a rerun after an optimizer change reruns ours
only. A cached run is only reused if the current `family.py` gives the same noise-free losses
for its trials.

Methods: `carbs` (ours, through `carbs.compat`), `carbs_cat` (ours natively, moe's n_experts
and top_k as categoricals), `imbue`, and the cheap in-process baselines `tpe` and `random`.

Metric: gap at budget C = (best noise-free loss among successful trials costing <= C) /
frontier(C) - 1 (inf when no trial costs <= C).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import family  # noqa: E402

DRIVER = HERE / "carbs_driver.py"


@dataclass(frozen=True)
class Setup:
    """Where each method's code lives."""

    ours_root: Path  # a copy of carbs/ taken from the repo once per command (see `snapshot`)
    ours_label: str  # that repo's HEAD at the copy, plus a hash of its uncommitted carbs/ diff
    imbue_python: Path  # interpreter of the venv with Imbue's `carbs` installed
    cache_dir: Path
    cached_only: bool = False  # tabulate what is cached; skip (and list) runs that are not


def _git_head(root: Path) -> str:
    """The short HEAD of `root`, plus '+dirty:<hash of the diff>' when carbs/ has uncommitted
    changes (ours runs whatever is on disk there)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
        ).stdout

    try:
        head = git("rev-parse", "--short", "HEAD").strip()
        diff = git("diff", "HEAD", "--", "carbs") + git(
            "ls-files", "--others", "--exclude-standard", "--", "carbs"
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (f"+dirty:{hashlib.sha1(diff.encode()).hexdigest()[:7]}" if diff else "")


def snapshot(repo: Path, dest: Path) -> tuple[Path, str]:
    """Copy `repo`'s carbs/ package (as on disk, uncommitted edits included) under `dest`, so
    every run of one command uses one version of our optimizer while its authors keep editing.
    Passing an earlier snapshot folder as `repo` reruns that version (and reuses its cached
    runs). Returns the folder to put on PYTHONPATH and the version label."""
    if repo.resolve().parent == dest.resolve() and (repo / "carbs").is_dir():
        return (
            repo.resolve(),
            repo.name,
        )  # an earlier snapshot, named by its label: reuse it as it is
    label = _git_head(repo)
    root = dest / label.replace(":", "_")
    if not (root / "carbs").exists() or label.endswith("unknown"):
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(
            repo / "carbs", root / "carbs", ignore=shutil.ignore_patterns("__pycache__")
        )
    return root, label


def _subprocess_run(setup: Setup, impl: str, problem: str, seed: int, trials: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", WANDB_MODE="disabled")
    if impl.startswith("ours"):
        env["PYTHONPATH"] = str(setup.ours_root)
        python = sys.executable
    else:
        python = str(setup.imbue_python)
    cmd = [python, str(DRIVER), "--impl", impl, "--problem", problem, "--seed", str(seed)]
    cmd += ["--trials", str(trials)]
    done = subprocess.run(cmd, cwd=HERE, env=env, capture_output=True, text=True)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(
            f"{impl} on {problem} seed {seed} failed (rc {done.returncode}):\n{done.stderr[-3000:]}"
        )
    return json.loads(lines[-1][len("RESULT ") :])


def _matches_family(run: dict) -> bool:
    """Whether a cached run's noise-free losses are what the current family.py gives."""
    problem = family.make(run["problem"])
    for t in run["trials"]:
        y = problem.true_loss(t["params"])
        if (y is None) != (t["true_loss"] is None) or (
            y is not None and not math.isclose(y, t["true_loss"], rel_tol=1e-9)
        ):
            return False
    return True


def imbue_run(setup: Setup, problem: str, seed: int, trials: int) -> dict | None:
    path = setup.cache_dir / f"imbue_{problem}_s{seed}_t{trials}.json"
    if path.exists():
        run = json.loads(path.read_text())
        if _matches_family(run):
            return run
        print(f"stale cache {path} (family.py changed): rerunning", file=sys.stderr)
    if setup.cached_only:
        return None
    run = _subprocess_run(setup, "imbue", problem, seed, trials)
    setup.cache_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run))
    return run


def ours_run(setup: Setup, problem: str, seed: int, trials: int, impl: str = "ours") -> dict | None:
    """Our run, cached under the code version it ran (HEAD plus a hash of any uncommitted
    carbs/ diff), so a changed optimizer always reruns and an unchanged one is not rerun."""
    commit = setup.ours_label
    path = setup.cache_dir / f"{impl}_{commit.replace(':', '_')}_{problem}_s{seed}_t{trials}.json"
    if commit != "unknown" and path.exists():
        run = json.loads(path.read_text())
        if _matches_family(run):
            return run
    if setup.cached_only:
        return None
    run = _subprocess_run(setup, impl, problem, seed, trials)
    run["commit"] = commit
    setup.cache_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run))
    return run


def baseline_run(method: str, name: str, seed: int, trials: int) -> dict:
    """Optuna TPE (loss only, not cost-aware) or uniform random in the basic space."""
    import optuna

    problem = family.make(name)
    rng = np.random.default_rng([seed, 2020])
    draw = np.random.default_rng([seed, 7])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    rows = []
    start = time.perf_counter()
    for _ in range(trials):
        t = time.perf_counter()
        if method == "tpe":
            trial = study.ask()
            values = {
                s.name: trial.suggest_float(s.name, s.min, s.max, log=s.kind in ("log", "logit"))
                for s in problem.params
            }
        else:
            values = {
                s.name: math.exp(draw.uniform(math.log(s.min), math.log(s.max)))
                if s.kind in ("log", "logit")
                else draw.uniform(s.min, s.max)
                for s in problem.params
            }
        suggest_s = time.perf_counter() - t
        legal = problem.legal(values)
        loss, cost = problem.evaluate(legal, rng)
        if method == "tpe":
            if loss is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, loss)
        rows.append(
            {
                "params": legal,
                "cost": cost,
                "loss": loss,
                "true_loss": problem.true_loss(legal),
                "failed": loss is None,
                "suggest_s": suggest_s,
            }
        )
    return {
        "impl": method,
        "problem": name,
        "seed": seed,
        "trials": rows,
        "wall_s": time.perf_counter() - start,
    }


# ---- metrics ----------------------------------------------------------------------------------


def gaps(run: dict, problem: family.FamilyProblem) -> list[float]:
    """Per budget: best noise-free loss among successful trials costing <= C, / frontier - 1."""
    out = []
    for c in problem.budgets:
        ok = [t["true_loss"] for t in run["trials"] if not t["failed"] and t["cost"] <= c]
        out.append(min(ok) / problem.frontier(c) - 1 if ok else math.inf)
    return out


def cost_fractions(run: dict, problem: family.FamilyProblem) -> list[float]:
    """Per budget: the cost of the trial behind the gap as a fraction of the budget (a run at
    half the budget cannot reach frontier(C) however well tuned)."""
    out = []
    for c in problem.budgets:
        ok = [t for t in run["trials"] if not t["failed"] and t["cost"] <= c]
        out.append(min(ok, key=lambda t: t["true_loss"])["cost"] / c if ok else math.nan)
    return out


def summary(run: dict, problem: family.FamilyProblem) -> dict[str, Any]:
    trials = run["trials"]
    seen: set[tuple] = set()
    repeats = 0
    for t in trials:
        key = tuple(sorted(t["params"].items()))
        repeats += key in seen
        seen.add(key)
    return {
        "seed": run["seed"],
        "gaps": gaps(run, problem),
        "best_cost_fraction": cost_fractions(run, problem),
        "spend": sum(t["cost"] for t in trials),
        "max_cost": max(t["cost"] for t in trials),
        "repeat_share": repeats / len(trials),
        "failures": sum(t["failed"] for t in trials),
        "wall_s": run["wall_s"],
    }


def run_family(
    setup: Setup, problems: list[str], methods: list[str], seeds: int, trials: int
) -> list[dict]:
    """Every method on every problem and seed; returns one row per (problem, method)."""
    rows = []
    for name in problems:
        problem = family.make(name)
        for method in methods:
            runs = []
            for seed in range(seeds):
                if method == "imbue":
                    run = imbue_run(setup, name, seed, trials)
                elif method == "carbs":
                    run = ours_run(setup, name, seed, trials)
                elif method == "carbs_cat":  # moe with true categoricals
                    run = ours_run(setup, name, seed, trials, impl="ours_cat")
                else:
                    run = baseline_run(method, name, seed, trials)
                if run is None:
                    print(f"{name} {method} seed {seed}: not cached, left out", file=sys.stderr)
                    continue
                runs.append(run)
                print(
                    f"{name} {method} seed {seed}: gaps "
                    + " ".join(_pct(g) for g in gaps(run, problem))
                    + f" ({run['wall_s']:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
            if not runs:
                continue
            per_seed = [summary(r, problem) for r in runs]
            rows.append(
                {
                    "problem": name,
                    "method": method,
                    "commit": ",".join(sorted({r["commit"] for r in runs if r.get("commit")})),
                    "budgets": list(problem.budgets),
                    "frontier": [problem.frontier(c) for c in problem.budgets],
                    "median_gap": [
                        statistics.median(s["gaps"][i] for s in per_seed)
                        for i in range(len(problem.budgets))
                    ],
                    "per_seed": per_seed,
                    "trials": trials,
                    "runs": runs,
                }
            )
    return rows


# ---- report -----------------------------------------------------------------------------------


def _pct(g: float) -> str:
    return "none" if math.isinf(g) else f"{100 * g:.1f} %"


def _wins(row: dict, ref: dict) -> tuple[list[int], int]:
    """Per budget, on how many seeds (run by both) `row` has a smaller gap than `ref`."""
    theirs = {q["seed"]: q for q in ref["per_seed"]}
    pairs = [(s, theirs[s["seed"]]) for s in row["per_seed"] if s["seed"] in theirs]
    wins = [sum(s["gaps"][i] < q["gaps"][i] for s, q in pairs) for i in range(len(row["budgets"]))]
    return wins, len(pairs)


def table(rows: list[dict], reference: str = "imbue", challenger: str = "carbs") -> str:
    """A markdown table per problem: median and per-seed gaps per budget, seeds where the
    challenger beats the reference, spend, largest trial, repeats, failures, wall time."""
    out = []
    for name in dict.fromkeys(r["problem"] for r in rows):
        mine = [r for r in rows if r["problem"] == name]
        budgets = mine[0]["budgets"]
        by_method = {r["method"]: r for r in mine}
        ref = by_method.get(reference)
        head = ["method"] + [f"median gap @ {c:.0e}" for c in budgets]
        head += ["per-seed gaps (" + " / ".join(f"{c:.0e}" for c in budgets) + ")"]
        head += [
            "beats imbue (seeds per budget)",
            "median spend",
            "max trial cost",
            "repeats",
            "failures",
            "wall s / run",
        ]
        lines = [
            f"**{name}** (frontier "
            + ", ".join(f"{f:.4g}" for f in mine[0]["frontier"])
            + f"; {mine[0]['trials']} trials, {len(mine[0]['per_seed'])} seeds)",
            "",
            "| " + " | ".join(head) + " |",
            "|" + " --- |" * len(head),
        ]
        for r in mine:
            seeds = r["per_seed"]
            beats = "-"
            if ref is not None and r is not ref:
                wins, common = _wins(r, ref)
                beats = " / ".join(f"{w}/{common}" for w in wins)
            label = r["method"] + (f" ({r['commit']})" if r.get("commit") else "")
            cells = [label] + [_pct(g) for g in r["median_gap"]]
            cells.append(
                "; ".join("/".join(_pct(g).replace(" %", "") for g in s["gaps"]) for s in seeds)
            )
            cells += [
                beats,
                f"{statistics.median(s['spend'] for s in seeds):.2g}",
                f"{max(s['max_cost'] for s in seeds):.2g}",
                f"{100 * statistics.mean(s['repeat_share'] for s in seeds):.0f} %",
                f"{statistics.mean(s['failures'] for s in seeds):.1f}",
                f"{statistics.mean(s['wall_s'] for s in seeds):.0f}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        if ref is not None and challenger in by_method:
            ch = by_method[challenger]
            half = all(
                g <= 0.5 * q for g, q in zip(ch["median_gap"], ref["median_gap"], strict=True)
            )
            wins, common = _wins(ch, ref)
            four = common >= 5 and all(w >= 0.8 * common for w in wins)
            lines.append("")
            lines.append(
                f"target: median gap <= half of Imbue's at every budget: "
                f"{'yes' if half else 'no'}; better on >= 4 of 5 seeds (80 % of {common} shared) at "
                f"every budget: "
                f"{'yes' if four else 'no'}"
            )
        out.append("\n".join(lines))
    return "\n\n".join(out)
