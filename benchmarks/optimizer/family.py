"""A family of cost-aware benchmark problems with known frontiers, in pure numpy.

Why pure numpy: the same module is imported by our optimizer's driver and, in a separate venv,
by Imbue's CARBS (whose package is also called `carbs`), so it must not import ours.
Written from public formulas (Hoffmann et al. 2022 for the Chinchilla constants, the Hartmann
6-D test function), not from `carbs/testing/`.

Each problem gives parameter specs in CARBS terms (log / linear / logit, bounds, search centre,
scale, integer), the noise-free `true_loss(p)` (None: the run fails), `cost(p)`, a relative
noise level, and the true frontier `frontier(C)`: the best noise-free loss of any legal config
costing at most C, found by a dense 1-D search over model size per discrete choice (every
other setting at its optimum, which the problems keep inside the bounds); `check_frontier`
compares it with the closed form where there is one.

Forms:
- chinchilla: 5 params (N, D, lr, batch, warmup), cost 6 N D, lr optimum moving with N and
  batch, batch optimum with D.
- cliff: the same with a divergence cliff: lr above 2.5 x its optimum fails (the issue's
  reference protocol).
- moe: N per expert, D, lr, n_experts (4..32), top_k (1..4): more experts add capacity at a
  small routing cost, top_k adds active compute; the best (n_experts, top_k) moves with budget.
- hetero: a 4-param Chinchilla-like law whose noise grows at small cost (1.6 % at 1e15 FLOPs,
  0.2 % at 1e18).
- hartmann6: BoTorch's Hartmann 6-D function made cost-aware: a `size` param is the cost, the
  optimum moves with log(size), loss = 1 + size^-0.3 (1 + 2 h(x)).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

LM_BUDGETS = (3e16, 3e17, 3e18)


@dataclass(frozen=True)
class ParamSpec:
    """One parameter in CARBS terms. `scale` is CARBS': the basic coordinate is
    log10(value) / scale (log), value / scale (linear) or log10(v / (1 - v)) / scale (logit)."""

    name: str
    kind: str  # "log" | "linear" | "logit"
    min: float
    max: float
    center: float
    scale: float = 1.0
    integer: bool = False

    def clamp(self, value: float) -> float:
        v = min(max(float(value), self.min), self.max)
        return (
            float(min(max(round(v), math.ceil(self.min)), math.floor(self.max)))
            if self.integer
            else v
        )


@dataclass(frozen=True)
class FamilyProblem:
    name: str
    params: tuple[ParamSpec, ...]
    budgets: tuple[float, ...]
    true_loss: Callable[[Mapping[str, float]], float | None]
    cost: Callable[[Mapping[str, float]], float]
    noise: Callable[[float], float]  # relative (log-normal) noise sd at a trial's cost
    frontier: Callable[[float], float]

    def legal(self, p: Mapping[str, Any]) -> dict[str, float]:
        """The values a trainer would run: clamped to bounds, integers rounded."""
        return {s.name: s.clamp(p[s.name]) for s in self.params}

    def evaluate(
        self, p: Mapping[str, Any], rng: np.random.Generator
    ) -> tuple[float | None, float]:
        """One noisy trial: (observed loss or None when the run fails, cost)."""
        q = self.legal(p)
        c = self.cost(q)
        y = self.true_loss(q)
        eps = rng.normal()  # drawn for failures too, so a failure does not shift later noise
        return (None if y is None else y * math.exp(self.noise(c) * eps)), c


def _min_over_log_n(f: Callable[[np.ndarray], np.ndarray], lo: float, hi: float) -> float:
    """Minimum of f over log N in [log lo, log hi]: a dense grid, then two zoomed grids."""
    a, b = math.log(lo), math.log(hi)
    best = math.inf
    for _ in range(3):
        x = np.linspace(a, b, 4001)
        y = f(np.exp(x))
        i = int(np.nanargmin(y))
        best = min(best, float(y[i]))
        step = x[1] - x[0]
        a, b = max(x[0], x[i] - 2 * step), min(x[-1], x[i] + 2 * step)
    return best


# ---- Chinchilla-like LM training (forms chinchilla, cliff) -------------------------------------

CH_E, CH_A, CH_B, CH_ALPHA, CH_BETA = 1.69, 406.4, 410.7, 0.34, 0.28  # Hoffmann et al. 2022
N_BOUNDS, D_BOUNDS = (1e6, 1e10), (1e7, 1e12)


def _chinchilla_base(n: np.ndarray | float, d: np.ndarray | float) -> np.ndarray | float:
    return CH_E + CH_A / np.power(n, CH_ALPHA) + CH_B / np.power(d, CH_BETA)


def lr_opt(n: float, batch: float) -> float:
    """Optimal learning rate: lower for larger models, higher for larger batches (sqrt rule)."""
    return 2e-3 * (n / 1e8) ** -0.35 * (batch / 128) ** 0.5


def batch_opt(d: float) -> float:
    """Optimal batch size (sequences) grows with the token budget."""
    return 128 * (d / 1e9) ** 0.45


def _lm_penalty(lr: float, lr_star: float, batch: float, batch_star: float, warm: float) -> float:
    """Relative loss increase off the optimum: asymmetric in lr (too high hurts twice as much)."""
    u = math.log(lr / lr_star)
    v = math.log(batch / batch_star)
    w = math.log(warm / 0.03)
    return (0.05 if u > 0 else 0.025) * u * u + 0.015 * v * v + 0.004 * w * w


def _lm_params() -> tuple[ParamSpec, ...]:
    return (
        ParamSpec("n_params", "log", *N_BOUNDS, center=2e7),
        ParamSpec("tokens", "log", *D_BOUNDS, center=1.5e8),
        ParamSpec("lr", "log", 1e-5, 1.0, center=1e-3),
        ParamSpec("batch", "log", 8, 4096, center=64, integer=True),
        ParamSpec("warmup", "logit", 1e-3, 0.5, center=0.1),
    )


def _chinchilla_frontier(c: float) -> float:
    def f(n: np.ndarray) -> np.ndarray:
        d = np.minimum(c / (6 * n), D_BOUNDS[1])
        return np.where(d >= D_BOUNDS[0], _chinchilla_base(n, d), np.inf)

    return _min_over_log_n(f, *N_BOUNDS)


def chinchilla(cliff: float | None = None) -> FamilyProblem:
    def true_loss(p: Mapping[str, float]) -> float | None:
        n, d, lr, batch = p["n_params"], p["tokens"], p["lr"], p["batch"]
        lr_star = lr_opt(n, batch)
        if cliff is not None and lr > cliff * lr_star:
            return None
        pen = _lm_penalty(lr, lr_star, batch, batch_opt(d), p["warmup"])
        return float(_chinchilla_base(n, d)) * (1 + pen)

    return FamilyProblem(
        name="chinchilla" if cliff is None else "cliff",
        params=_lm_params(),
        budgets=LM_BUDGETS,
        true_loss=true_loss,
        cost=lambda p: 6 * p["n_params"] * p["tokens"],
        noise=lambda c: 0.005,
        frontier=functools.lru_cache(maxsize=None)(_chinchilla_frontier),
    )


def chinchilla_closed_form(c: float) -> float:
    """Hoffmann et al.'s closed-form compute-optimal loss (valid when N, D are interior)."""
    g = (CH_ALPHA * CH_A / (CH_BETA * CH_B)) ** (1 / (CH_ALPHA + CH_BETA))
    n = g * (c / 6) ** (CH_BETA / (CH_ALPHA + CH_BETA))
    return float(_chinchilla_base(n, c / (6 * n)))


# ---- Mixture of experts with integer choices (form moe) ----------------------------------------

MOE_SHARED = 0.3  # share of a layer's params outside the experts (attention, embeddings)
EXPERTS, TOP_K = (4, 32), (1, 4)


def _moe_terms(n: np.ndarray | float, d: np.ndarray | float, e: int, k: int):
    """(loss at optimal lr, cost) for per-expert size n, tokens d, e experts, top-k routing.

    Active params n_act = n (s + (1-s) k) set the compute; total params n_tot = n (s + (1-s) e)
    add capacity with diminishing returns (n_eff = n_act^0.75 n_tot^0.25); each expert sees a
    k / e share of the tokens, an undertraining term that fades with data, so the best
    n_experts grows with budget (13, 14, 15 at 3e16, 3e17, 3e18; top_k 1); routing costs 2 %
    of compute per expert."""
    s = MOE_SHARED
    n_act = n * (s + (1 - s) * k)
    n_tot = n * (s + (1 - s) * e)
    n_eff = np.power(n_act, 0.75) * np.power(n_tot, 0.25)
    under = 1e4 * math.sqrt(e / k) / np.power(d, 0.7)
    loss = CH_E + CH_A / np.power(n_eff, CH_ALPHA) + CH_B / np.power(d, CH_BETA) + under
    cost = 6 * n_act * d * (1 + 0.02 * e)
    return loss, cost


def moe_lr_opt(n_act: float, k: int) -> float:
    return 2e-3 * (n_act / 1e8) ** -0.35 * k**-0.25


def _moe_frontier(c: float) -> float:
    best = math.inf
    for e in range(EXPERTS[0], EXPERTS[1] + 1):
        for k in range(TOP_K[0], TOP_K[1] + 1):
            _, unit = _moe_terms(1.0, 1.0, e, k)  # cost is linear in n and d

            def f(n: np.ndarray, e: int = e, k: int = k, unit: float = unit) -> np.ndarray:
                d = np.minimum(c / (unit * n), D_BOUNDS[1])
                loss, _ = _moe_terms(n, d, e, k)
                return np.where(d >= D_BOUNDS[0], loss, np.inf)

            best = min(best, _min_over_log_n(f, 1e6, 3e9))
    return best


def moe() -> FamilyProblem:
    def true_loss(p: Mapping[str, float]) -> float | None:
        n, d, lr = p["n_expert_params"], p["tokens"], p["lr"]
        e, k = int(p["n_experts"]), int(p["top_k"])
        base, _ = _moe_terms(n, d, e, k)
        lr_star = moe_lr_opt(n * (MOE_SHARED + (1 - MOE_SHARED) * k), k)
        u = math.log(lr / lr_star)
        return float(base) * (1 + (0.05 if u > 0 else 0.025) * u * u)

    return FamilyProblem(
        name="moe",
        params=(
            ParamSpec("n_expert_params", "log", 1e6, 3e9, center=1e7),
            ParamSpec("tokens", "log", *D_BOUNDS, center=1.5e8),
            ParamSpec("lr", "log", 1e-5, 1.0, center=1e-3),
            ParamSpec("n_experts", "log", *EXPERTS, center=8, integer=True),
            ParamSpec("top_k", "log", *TOP_K, center=2, integer=True),
        ),
        budgets=LM_BUDGETS,
        true_loss=true_loss,
        cost=lambda p: float(
            _moe_terms(p["n_expert_params"], p["tokens"], int(p["n_experts"]), int(p["top_k"]))[1]
        ),
        noise=lambda c: 0.005,
        frontier=functools.lru_cache(maxsize=None)(_moe_frontier),
    )


def moe_best_choice(c: float) -> tuple[int, int]:
    """The (n_experts, top_k) of the frontier at budget c (to see the optimum move)."""
    frontier = _moe_frontier(c)
    for e in range(EXPERTS[0], EXPERTS[1] + 1):
        for k in range(TOP_K[0], TOP_K[1] + 1):
            _, unit = _moe_terms(1.0, 1.0, e, k)

            def f(n: np.ndarray, e: int = e, k: int = k, unit: float = unit) -> np.ndarray:
                d = np.minimum(c / (unit * n), D_BOUNDS[1])
                loss, _ = _moe_terms(n, d, e, k)
                return np.where(d >= D_BOUNDS[0], loss, np.inf)

            if _min_over_log_n(f, 1e6, 3e9) <= frontier:
                return e, k
    raise AssertionError("no choice attains the frontier")


# ---- Heteroscedastic noise (form hetero) --------------------------------------------------------

HE_E, HE_A, HE_B, HE_ALPHA, HE_BETA = 2.1, 520.0, 1500.0, 0.33, 0.32


def _hetero_base(n: np.ndarray | float, d: np.ndarray | float) -> np.ndarray | float:
    return HE_E + HE_A / np.power(n, HE_ALPHA) + HE_B / np.power(d, HE_BETA)


def _hetero_frontier(c: float) -> float:
    def f(n: np.ndarray) -> np.ndarray:
        d = np.minimum(c / (6 * n), D_BOUNDS[1])
        return np.where(d >= D_BOUNDS[0], _hetero_base(n, d), np.inf)

    return _min_over_log_n(f, *N_BOUNDS)


def hetero() -> FamilyProblem:
    def true_loss(p: Mapping[str, float]) -> float | None:
        n, d, lr, batch = p["n_params"], p["tokens"], p["lr"], p["batch"]
        u = math.log(lr / (3e-3 * (n / 1e8) ** -0.5))
        v = math.log(batch / (64 * (d / 1e9) ** 0.6))
        return float(_hetero_base(n, d)) * (1 + 0.04 * u * u + 0.02 * v * v)

    return FamilyProblem(
        name="hetero",
        params=(
            ParamSpec("n_params", "log", *N_BOUNDS, center=2e7),
            ParamSpec("tokens", "log", *D_BOUNDS, center=1.5e8),
            ParamSpec("lr", "log", 1e-5, 1.0, center=1e-3),
            ParamSpec("batch", "log", 4, 4096, center=64, integer=True),
        ),
        budgets=LM_BUDGETS,
        true_loss=true_loss,
        cost=lambda p: 6 * p["n_params"] * p["tokens"],
        noise=lambda c: float(np.clip(0.004 * (1e17 / c) ** 0.3, 0.002, 0.05)),
        frontier=functools.lru_cache(maxsize=None)(_hetero_frontier),
    )


# ---- Hartmann 6-D made cost-aware (form hartmann6) ---------------------------------------------

_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_H_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)
H_MIN = -3.32237  # at (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573)
H_SHIFT = 0.05 * np.array([1, -1, 1, -1, 1, -1])  # optimum moves by this per decade of size


def hartmann6_value(x: np.ndarray) -> float:
    return float(-(_H_ALPHA * np.exp(-(_H_A * (x - _H_P) ** 2).sum(axis=1))).sum())


def hartmann6() -> FamilyProblem:
    def true_loss(p: Mapping[str, float]) -> float | None:
        s = p["size"]
        x = np.array([p[f"x{i}"] for i in range(6)]) - H_SHIFT * (math.log10(s) - 2)
        h = (hartmann6_value(x) - H_MIN) / -H_MIN  # in [0, ~1], 0 at the optimum
        return 1 + s**-0.3 * (1 + 2 * max(h, 0.0))

    return FamilyProblem(
        name="hartmann6",
        params=tuple(
            ParamSpec(f"x{i}", "linear", 0.0, 1.0, center=0.5, scale=0.5) for i in range(6)
        )
        + (ParamSpec("size", "log", 1.0, 1e4, center=3.0),),
        budgets=(10.0, 100.0, 1000.0),
        true_loss=true_loss,
        cost=lambda p: float(p["size"]),
        noise=lambda c: 0.005,
        frontier=lambda c: 1 + min(c, 1e4) ** -0.3,  # the shifted optimum stays inside [0, 1]^6
    )


PROBLEMS: dict[str, Callable[[], FamilyProblem]] = {
    "chinchilla": chinchilla,
    "cliff": lambda: chinchilla(cliff=2.5),
    "moe": moe,
    "hetero": hetero,
    "hartmann6": hartmann6,
}


def make(name: str) -> FamilyProblem:
    if name not in PROBLEMS:
        raise KeyError(f"unknown family problem {name!r}; known: {', '.join(PROBLEMS)}")
    return PROBLEMS[name]()


def check_frontier(problem: FamilyProblem, rng: np.random.Generator, samples: int = 20000) -> dict:
    """Evidence that `frontier` is right: its value against the closed form (chinchilla, cliff),
    and that no random legal config beats it at its own cost (all problems)."""
    out: dict[str, Any] = {}
    if problem.name in ("chinchilla", "cliff"):
        out["closed_form_rel_err"] = max(
            abs(problem.frontier(c) / chinchilla_closed_form(c) - 1) for c in problem.budgets
        )
    worst = -math.inf
    for _ in range(samples):
        p = {}
        for s in problem.params:
            if s.kind == "log":
                p[s.name] = math.exp(rng.uniform(math.log(s.min), math.log(s.max)))
            else:
                p[s.name] = rng.uniform(s.min, s.max)
        q = problem.legal(p)
        y = problem.true_loss(q)
        if y is not None:
            worst = max(worst, problem.frontier(problem.cost(q)) / y - 1)
    out["max_random_beat"] = worst  # must be <= ~0 (a config beating the frontier)
    return out
