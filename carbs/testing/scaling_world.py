"""A synthetic, cost-aware ground truth for MoE language-model sweeps.

Why: the optimizer benchmark and the scaling-law validation both need a problem whose true
compute-optimal config and loss are known at any budget, with the traits that make real sweeps
hard: optima of learning rate and batch size that move with model size, a Chinchilla-like
trade-off between size and data with an MoE efficiency gain, noise, and a divergence cliff on
the high-learning-rate side. Evaluations are microseconds, so benchmarks can run thousands.

The loss (noise-free) is

    L = E + (A / N_eff^alpha + B * g^eta / D^beta) * (1 + penalties)

with N_eff = n_layers * (4 d^2 + 6 d^2 * top_k^0.9 * exp(gamma ln g - kappa ln^2 g)),
g = n_experts / top_k (a saturating MoE gain),
D = tokens, and penalties quadratic in log space around optima that depend on the shape:
lr*(d, batch) ~ d^-0.7 * batch^0.3, batch*(D) ~ D^0.35, aspect*(N) = d / n_layers ~ N^0.15.
A run diverges when lr exceeds `div_ratio` x lr* (less with very short warmup).
Cost is training FLOPs: 6 x (active params + attention) x tokens, deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.optimize import minimize

from carbs.space import Constraint, Param, SearchSpace

SEQ_LEN = 512
HEAD_DIM = 64


@dataclass(frozen=True)
class WorldConstants:
    """Ground-truth constants; `ScalingWorld(seed)` perturbs them so seeds are different worlds."""

    E: float = 1.75
    A: float = 420.0
    B: float = 520.0
    alpha: float = 0.34
    beta: float = 0.29
    gamma: float = 0.30  # MoE effective-parameter gain exponent in n_experts / top_k
    kappa: float = 0.045  # saturation of the MoE gain (log-quadratic): optimum g ~ e^(gamma/2kappa)
    eta: float = 0.03  # MoE data-efficiency loss exponent (experts see fewer tokens each)
    k_exp: float = 0.9  # top_k returns: active expert FLOPs buy k^0.9 effective experts
    lr0: float = 3e-3  # optimal lr at d_model=256, batch=64
    lr_d_exp: float = -0.7
    lr_b_exp: float = 0.3
    b0: float = 64.0  # optimal batch (sequences) at 1e9 tokens
    b_exp: float = 0.35
    aspect0: float = 40.0  # optimal d_model / n_layers at N_eff = 1e7
    aspect_exp: float = 0.15
    w_lr_hi: float = 0.16
    w_lr_lo: float = 0.07
    w_bs: float = 0.025
    w_aspect: float = 0.03
    w_warm: float = 0.02
    warm0: float = 0.03
    div_ratio: float = 4.0


def _space() -> SearchSpace:
    return SearchSpace(
        params=(
            Param("d_model", "log", 64, 8192, center=256, multiple_of=64, scales_cost=True),
            Param("n_layers", "log", 1, 64, center=6, integer=True, scales_cost=True),
            Param("n_experts", "log", 1, 64, center=8, integer=True, scales_cost=True),
            Param("top_k", "int", 1, 4, center=2, scales_cost=True),
            Param("tokens", "log", 1e7, 1e13, center=1e9, scales_cost=True),
            Param("learning_rate", "log", 1e-5, 3e-1, center=2e-3),
            Param("batch_size", "log", 8, 8192, center=64, integer=True),
            Param("warmup_frac", "logit", 0.003, 0.3, center=0.03),
        ),
        constraints=(Constraint("top_k <= n_experts"),),
        fixed={"seq_len": SEQ_LEN, "head_dim": HEAD_DIM},
    )


class ScalingWorld:
    """Ground-truth MoE scaling problem. `seed` perturbs the constants; `noise` is the sd of
    the multiplicative log-normal observation noise on the loss."""

    def __init__(self, seed: int = 0, noise: float = 0.005) -> None:
        self.seed = seed
        self.noise = float(noise)
        base = WorldConstants()
        if seed == 0:
            self.k = base
        else:
            r = np.random.default_rng([7919, seed])

            def j(v: float, rel: float) -> float:
                return float(v * math.exp(r.normal(0.0, rel)))

            self.k = WorldConstants(
                E=j(base.E, 0.08),
                A=j(base.A, 0.25),
                B=j(base.B, 0.25),
                alpha=j(base.alpha, 0.08),
                beta=j(base.beta, 0.08),
                gamma=j(base.gamma, 0.15),
                kappa=j(base.kappa, 0.2),
                eta=j(base.eta, 0.2),
                lr0=j(base.lr0, 0.3),
                lr_d_exp=base.lr_d_exp + float(r.normal(0, 0.1)),
                lr_b_exp=base.lr_b_exp + float(r.normal(0, 0.05)),
                b0=j(base.b0, 0.3),
                b_exp=base.b_exp + float(r.normal(0, 0.05)),
                aspect0=j(base.aspect0, 0.3),
                aspect_exp=base.aspect_exp + float(r.normal(0, 0.04)),
                div_ratio=j(base.div_ratio, 0.15),
            )
        self._space = _space()

    # ---- problem definition -------------------------------------------------------------
    def space(self) -> SearchSpace:
        return self._space

    @staticmethod
    def flops_per_token(params: Mapping[str, Any]) -> float:
        """Training FLOPs per token: 6 x active params plus attention over SEQ_LEN."""
        L = float(params["n_layers"])
        d = float(params["d_model"])
        return 6.0 * ScalingWorld.param_count(params) + 6.0 * L * SEQ_LEN * d

    @staticmethod
    def param_count(params: Mapping[str, Any]) -> float:
        """Active non-embedding parameters (router included): what a sweep can count, unlike
        the world's hidden effective size."""
        d, L = float(params["d_model"]), float(params["n_layers"])
        e, k = float(params["n_experts"]), float(params["top_k"])
        return L * (4 * d * d + 6 * d * d * k + d * e)

    def cost(self, params: Mapping[str, Any]) -> float:
        """Training FLOPs of a config (deterministic)."""
        return self.flops_per_token(params) * float(params["tokens"])

    def _n_eff(self, d: float, L: float, e: float, k: float) -> float:
        c = self.k
        lg = math.log(max(e / k, 1.0))
        gain = math.exp(c.gamma * lg - c.kappa * lg * lg)
        return L * (4 * d * d + 6 * d * d * k**c.k_exp * gain)

    def lr_opt(self, params: Mapping[str, Any]) -> float:
        """The noise-free optimal learning rate for this shape and batch size."""
        c = self.k
        d, b = float(params["d_model"]), float(params["batch_size"])
        return c.lr0 * (d / 256.0) ** c.lr_d_exp * (b / 64.0) ** c.lr_b_exp

    def batch_opt(self, tokens: float) -> float:
        return self.k.b0 * (tokens / 1e9) ** self.k.b_exp

    def aspect_opt(self, n_eff: float) -> float:
        return self.k.aspect0 * (n_eff / 1e7) ** self.k.aspect_exp

    def diverges(self, params: Mapping[str, Any], jitter: float = 0.0) -> bool:
        """True when the learning rate is past the divergence cliff for this config."""
        c = self.k
        warm = float(params.get("warmup_frac", c.warm0))
        thr = math.log(c.div_ratio) + 0.15 * max(min(math.log(warm / c.warm0), 0.0), -2.0)
        return math.log(float(params["learning_rate"]) / self.lr_opt(params)) > thr + jitter

    def true_loss(self, params: Mapping[str, Any]) -> float:
        """Noise-free loss; `math.inf` where the config diverges."""
        if self.diverges(params):
            return math.inf
        return self._loss_no_div(params)

    def _loss_no_div(self, params: Mapping[str, Any]) -> float:
        c = self.k
        d, L = float(params["d_model"]), float(params["n_layers"])
        e, k = float(params["n_experts"]), float(params["top_k"])
        D = float(params["tokens"])
        g = max(e / k, 1.0)
        n_eff = self._n_eff(d, L, e, k)
        reducible = c.A / n_eff**c.alpha + c.B * g**c.eta / D**c.beta
        return c.E + reducible * (1.0 + self.settings_penalty(params))

    def settings_penalty(self, params: Mapping[str, Any]) -> float:
        """The relative excess of the reducible loss from lr, batch, aspect and warmup."""
        c = self.k
        d, L, D = float(params["d_model"]), float(params["n_layers"]), float(params["tokens"])
        n_eff = self._n_eff(d, L, float(params["n_experts"]), float(params["top_k"]))
        x_lr = math.log(float(params["learning_rate"]) / self.lr_opt(params))
        pen = (c.w_lr_hi if x_lr > 0 else c.w_lr_lo) * x_lr**2
        pen += c.w_bs * math.log(float(params["batch_size"]) / self.batch_opt(D)) ** 2
        pen += c.w_aspect * math.log((d / L) / self.aspect_opt(n_eff)) ** 2
        warm = float(params.get("warmup_frac", c.warm0))
        pen += c.w_warm * math.log(warm / c.warm0) ** 2
        return pen

    def evaluate(
        self, params: Mapping[str, Any], rng: np.random.Generator
    ) -> tuple[float | None, float]:
        """One noisy trial: (loss or None if it diverged, cost in FLOPs)."""
        cost = self.cost(params)
        if self.diverges(params, jitter=float(rng.normal(0.0, 0.1))):
            return None, cost
        loss = self._loss_no_div(params) * math.exp(float(rng.normal(0.0, self.noise)))
        return loss, cost

    # ---- ground-truth optimum -----------------------------------------------------------
    def _complete(self, d: float, L: float, e: float, k: float, C: float) -> dict[str, Any]:
        """Fill tokens from the budget and lr/batch/warmup at their optima for this shape."""
        p: dict[str, Any] = {"d_model": d, "n_layers": L, "n_experts": e, "top_k": k}
        p["tokens"] = C / self.flops_per_token(p)
        p["batch_size"] = self.batch_opt(p["tokens"])
        p["warmup_frac"] = self.k.warm0
        p["learning_rate"] = self.lr_opt(p)
        return p

    def _legal(self, p: dict[str, Any], C: float) -> dict[str, Any]:
        sp = self._space
        q = {n: sp.param(n).clamp(p[n]) for n in ("d_model", "n_layers", "n_experts", "top_k")}
        q["top_k"] = min(q["top_k"], q["n_experts"])
        q["tokens"] = C / self.flops_per_token(q)
        q["batch_size"] = sp.param("batch_size").clamp(self.batch_opt(q["tokens"]))
        q["warmup_frac"] = self.k.warm0
        q["learning_rate"] = sp.param("learning_rate").clamp(self.lr_opt(q))
        return {**q, **dict(sp.fixed)}

    @lru_cache(maxsize=512)  # noqa: B019 - worlds are few and long-lived
    def _optimum(self, C: float) -> tuple[float, tuple[tuple[str, Any], ...]]:
        best: tuple[float, dict[str, Any]] | None = None
        sp = self._space
        for k in (1, 2, 3, 4):

            def f(x: np.ndarray, k: int = k) -> float:
                d, L, e = math.exp(x[0]), math.exp(x[1]), max(math.exp(x[2]), k)
                p = self._complete(d, L, e, k, C)
                return math.log(self._loss_no_div(p))

            starts = [
                [math.log(dd), math.log(ll), math.log(max(ee, k))]
                for dd, ll in ((256.0, 6.0), (1024.0, 16.0))
                for ee in (1.0, 8.0, 48.0)
            ]
            for s in starts:
                res = minimize(f, s, method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-10})
                d, L, e = (math.exp(v) for v in res.x)
                # legal neighbours of the continuous optimum (multiples, integers, bounds)
                for dd in _around(d, sp.param("d_model")):
                    for ll in _around(L, sp.param("n_layers")):
                        for ee in _around(max(e, k), sp.param("n_experts")):
                            if ee < k:
                                continue
                            q = self._legal(
                                {"d_model": dd, "n_layers": ll, "n_experts": ee, "top_k": k}, C
                            )
                            tmin, tmax = sp.param("tokens").min, sp.param("tokens").max
                            if not (tmin <= q["tokens"] <= tmax):
                                continue
                            val = self.true_loss(q)
                            if best is None or val < best[0]:
                                best = (val, q)
        if best is None:
            raise ValueError(f"no legal config reaches compute {C:.3g} FLOPs in this world's space")
        return best[0], tuple(sorted(best[1].items()))

    def optimal_loss(self, C: float) -> float:
        """True loss of the best legal config costing exactly C FLOPs."""
        return self._optimum(float(C))[0]

    def optimal_config(self, C: float) -> dict[str, Any]:
        """The best legal config costing exactly C FLOPs (tokens solved from the budget)."""
        return dict(self._optimum(float(C))[1])

    def frontier_loss(self, costs: Sequence[float] | np.ndarray) -> np.ndarray:
        """The best achievable loss at each cost: the ground-truth Pareto frontier."""
        return np.array([self.optimal_loss(float(c)) for c in np.atleast_1d(costs)])


def _around(v: float, p: Param) -> list[Any]:
    """The legal values just below and above `v` for parameter `p`."""
    step = p.multiple_of or 1
    lo = math.floor(v / step) * step
    cands = {p.clamp(lo), p.clamp(lo + step)}
    return sorted(cands)
