"""A family of synthetic ground-truth worlds whose functional forms differ, for validating the
scaling model on worlds it was not developed on.

Why a family and not one world: a fit tuned until one world's figures improve has learned that
world. Each world here draws its forms independently: how size and data combine (additive, or
a smoothed sum), how a mixture of experts gains (log-quadratic in experts per token, a rational
saturation, or fine-grained experts), what the learning rate's optimum follows (model size,
tokens, compute, or width and batch), what the batch size's follows (tokens or compute, counted
in sequences or in tokens), whether an aspect-ratio optimum and a weight-decay setting exist,
how penalties combine, the noise (0.3-3 %) and the divergence cliff (2-6x the optimal learning
rate). Parameter names differ between worlds too (`d_model` or `hidden_size`, `n_experts` or
`expert_ratio`, `batch_size` or `batch_tokens`, ...), so nothing may key on today's names.

Each world knows its true loss, its exact cost, the parameter count a sweep can measure, and its
compute-optimal config and loss at any budget (a search over the shape with every setting at its
closed-form optimum). `evaluate`, `cost` and `active_params` take a params dict carrying the
fixed `world` index, so a sweep can run a world through the ordinary runner.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from scipy.optimize import minimize

from carbs.errors import ConfigFailure
from carbs.space import Constraint, Param, SearchSpace

SEQ_LEN = 1024
FAMILY_SIZE = 24
FAMILY_SEED = 2026
# worlds from this index on draw the compute-optimal size's exponent a = beta / (alpha + beta)
# over the published range (0.3-0.75: Kaplan 0.73, Hoffmann 0.50, Porian 0.5-0.87 by recipe)
# instead of keeping it near the base world's ~0.47: a check that no pick leans on one exponent
SIZE_EXPONENT_WORLDS = 100

ROLE_NAMES: dict[str, tuple[str, ...]] = {
    "width": ("d_model", "hidden_size", "n_embd"),
    "depth": ("n_layers", "num_layers", "depth"),
    "experts": ("n_experts", "expert_ratio"),
    "top_k": ("top_k", "experts_per_token"),
    "granularity": ("granularity", "expert_granularity"),
    "tokens": ("tokens", "train_tokens"),
    "lr": ("learning_rate", "lr"),
    "batch": ("batch_size", "batch_tokens"),
    "wd": ("weight_decay", "wd"),
    "warmup": ("warmup_frac", "warmup"),
}


@dataclass(frozen=True)
class WorldForm:
    """What differs between worlds: the forms, the noise, the names of the parameters."""

    loss: Literal["additive", "smooth"] = "additive"
    smooth: float = 1.0  # R = (A/N^(a/s) + B/D^(b/s))^s; 1 is additive
    moe: Literal["logquad", "rational", "granular"] = "logquad"
    experts_as: Literal["count", "ratio"] = "count"
    lr_follows: Literal["N", "D", "C", "width_batch"] = "width_batch"
    batch_follows: Literal["D", "C"] = "D"
    batch_unit: Literal["sequences", "tokens"] = "sequences"
    aspect: bool = True
    weight_decay: bool = False
    penalty: Literal["linear", "exp"] = "linear"  # R (1 + P) or R e^P
    noise: float = 0.005
    div_ratio: float = 4.0
    names: tuple[tuple[str, str], ...] = ()  # role -> parameter name, where not the first

    def name_of(self, role: str) -> str:
        return dict(self.names).get(role, ROLE_NAMES[role][0])


@dataclass(frozen=True)
class WorldConstants:
    """Numbers of one world (drawn around these by `draw_world`)."""

    E: float = 1.8
    A: float = 420.0
    B: float = 520.0
    alpha: float = 0.34
    beta: float = 0.30
    gain_exp: float = 0.30  # MoE effective-parameter gain in experts per token (and granularity)
    gain_sat: float = 0.045  # its saturation
    data_cost: float = 0.03  # experts see fewer tokens each: B g^data_cost
    lr0: float = 2e-3
    lr_exp: float = 0.3  # slope of log lr* against what it follows (sign set by the form)
    b0: float = 128.0  # optimal batch (sequences) at the reference scale
    b_exp: float = 0.35
    aspect0: float = 60.0
    aspect_exp: float = 0.15
    wd_tau: float = 0.2  # optimal AdamW timescale as a fraction of the run: wd* = 1/(tau lr T)
    w_lr_hi: float = 0.16
    w_lr_lo: float = 0.06
    w_bs: float = 0.03
    w_aspect: float = 0.03
    w_wd: float = 0.02
    w_warm: float = 0.02
    warm0: float = 0.02


@dataclass(frozen=True)
class FamilyWorld:
    """One ground truth: forms, constants, and the search space a sweep of it would use."""

    index: int
    form: WorldForm
    k: WorldConstants = field(default_factory=WorldConstants)

    # ---- the sweep's view ----------------------------------------------------------------
    def space(self) -> SearchSpace:
        return _space(self.form, self.index)

    def roles(self) -> dict[str, str]:
        """Role -> parameter name, for the roles this world has."""
        out = {r: self.form.name_of(r) for r in ("width", "depth", "experts", "top_k")}
        out.update({r: self.form.name_of(r) for r in ("tokens", "lr", "batch", "warmup")})
        if self.form.moe == "granular":
            out["granularity"] = self.form.name_of("granularity")
        if self.form.weight_decay:
            out["wd"] = self.form.name_of("wd")
        return out

    def shape(self, params: Mapping[str, Any]) -> tuple[float, float, float, float, float]:
        """(width, depth, n_experts, top_k, granularity) of a config."""
        f = self.form
        d = float(params[f.name_of("width")])
        layers = float(params[f.name_of("depth")])
        k = float(params[f.name_of("top_k")])
        e = float(params[f.name_of("experts")])
        experts = e * k if f.experts_as == "ratio" else e
        g = float(params.get(f.name_of("granularity"), 1.0)) if f.moe == "granular" else 1.0
        return d, layers, max(experts, k), k, g

    def active_params(self, params: Mapping[str, Any]) -> float:
        """Active non-embedding parameters: attention, the top-k experts' FFNs (split into
        `granularity` finer experts, k x granularity of them active: the same FFN size), the
        router."""
        d, layers, e, k, g = self.shape(params)
        return layers * (4 * d * d + 6 * d * d * k + d * e * g)

    def flops_per_token(self, params: Mapping[str, Any]) -> float:
        d, layers, *_ = self.shape(params)
        return 6.0 * self.active_params(params) + 6.0 * layers * SEQ_LEN * d

    def cost(self, params: Mapping[str, Any]) -> float:
        return self.flops_per_token(params) * float(params[self.form.name_of("tokens")])

    def batch_sequences(self, params: Mapping[str, Any]) -> float:
        b = float(params[self.form.name_of("batch")])
        return b / SEQ_LEN if self.form.batch_unit == "tokens" else b

    # ---- the truth ---------------------------------------------------------------------------
    def n_eff(self, params: Mapping[str, Any]) -> float:
        """The size the loss scales with: dense-equivalent parameters times the MoE gain."""
        d, layers, e, k, g = self.shape(params)
        dense = layers * (4 * d * d + 6 * d * d * k**0.9)
        return dense * self._gain(e / k, g)

    def _gain(self, ratio: float, g: float) -> float:
        c, lg = self.k, math.log(max(ratio, 1.0))
        if self.form.moe == "rational":
            return (1.0 + c.gain_exp * lg) / (1.0 + c.gain_sat * 4.0 * lg * lg)
        gain = math.exp(c.gain_exp * lg - c.gain_sat * lg * lg)
        if self.form.moe == "granular":
            lgg = math.log(max(g, 1.0))
            gain *= math.exp(0.5 * c.gain_exp * lgg - 2.0 * c.gain_sat * lgg * lgg)
        return gain

    def reducible(self, n_eff: float, tokens: float, ratio: float) -> float:
        c = self.k
        size = c.A / n_eff**c.alpha
        data = c.B * max(ratio, 1.0) ** c.data_cost / tokens**c.beta
        if self.form.loss == "smooth":
            s = self.form.smooth
            return (size ** (1 / s) + data ** (1 / s)) ** s
        return size + data

    def optima(self, params: Mapping[str, Any]) -> dict[str, float]:
        """Each setting's optimal value for this config's shape, tokens, batch (and lr)."""
        f, c = self.form, self.k
        tokens = float(params[f.name_of("tokens")])
        n_eff = self.n_eff(params)
        compute = 6.0 * self.active_params(params) * tokens
        if f.batch_follows == "D":
            b_seq = c.b0 * (tokens / 1e10) ** c.b_exp
        else:
            b_seq = c.b0 * (compute / 1e18) ** (0.8 * c.b_exp)
        out = {"batch": b_seq * (SEQ_LEN if f.batch_unit == "tokens" else 1.0)}
        b_now = self.batch_sequences(params) if f.name_of("batch") in params else b_seq
        if f.lr_follows == "N":
            lr = c.lr0 * (n_eff / 1e8) ** -c.lr_exp
        elif f.lr_follows == "D":
            lr = c.lr0 * (tokens / 1e10) ** (-0.7 * c.lr_exp)
        elif f.lr_follows == "C":
            lr = c.lr0 * (compute / 1e18) ** (-0.5 * c.lr_exp)
        else:
            d = self.shape(params)[0]
            lr = c.lr0 * (d / 1024.0) ** (-2.3 * c.lr_exp) * (b_now / c.b0) ** 0.3
        out["lr"] = lr
        if f.weight_decay:
            lr_now = float(params.get(f.name_of("lr"), lr))
            steps = tokens / (b_now * SEQ_LEN)
            out["wd"] = 1.0 / (c.wd_tau * lr_now * max(steps, 1.0))
        out["warmup"] = c.warm0
        if f.aspect:
            out["aspect"] = c.aspect0 * (n_eff / 1e8) ** c.aspect_exp
        return out

    def penalty(self, params: Mapping[str, Any]) -> float:
        f, c = self.form, self.k
        opt = self.optima(params)
        x = math.log(float(params[f.name_of("lr")]) / opt["lr"])
        pen = (c.w_lr_hi if x > 0 else c.w_lr_lo) * x * x
        pen += c.w_bs * math.log(float(params[f.name_of("batch")]) / opt["batch"]) ** 2
        warm = float(params.get(f.name_of("warmup"), c.warm0))
        pen += c.w_warm * math.log(warm / c.warm0) ** 2
        if f.weight_decay:
            pen += c.w_wd * math.log(float(params[f.name_of("wd")]) / opt["wd"]) ** 2
        if f.aspect:
            d, layers, *_ = self.shape(params)
            pen += c.w_aspect * math.log((d / layers) / opt["aspect"]) ** 2
        return pen

    def diverges(self, params: Mapping[str, Any], jitter: float = 0.0) -> bool:
        x = math.log(float(params[self.form.name_of("lr")]) / self.optima(params)["lr"])
        return x > math.log(self.form.div_ratio) + jitter

    def true_loss(self, params: Mapping[str, Any]) -> float:
        """Noise-free loss; inf where the run diverges."""
        if self.diverges(params):
            return math.inf
        return self._loss(params)

    def _loss(self, params: Mapping[str, Any]) -> float:
        _, _, e, k, _ = self.shape(params)
        r = self.reducible(self.n_eff(params), float(params[self.form.name_of("tokens")]), e / k)
        pen = self.penalty(params)
        factor = math.exp(min(pen, 5.0)) if self.form.penalty == "exp" else 1.0 + pen
        return self.k.E + r * factor

    def evaluate(
        self, params: Mapping[str, Any], rng: np.random.Generator
    ) -> tuple[float | None, float]:
        cost = self.cost(params)
        if self.diverges(params, jitter=float(rng.normal(0.0, 0.1))):
            return None, cost
        return self._loss(params) * math.exp(float(rng.normal(0.0, self.form.noise))), cost

    # ---- the optimum ---------------------------------------------------------------------------
    def complete(self, shape: Mapping[str, float], budget: float) -> dict[str, Any]:
        """A legal config of this shape costing `budget`, every setting at its optimum."""
        sp = self.space()
        f = self.form
        p: dict[str, Any] = dict(sp.fixed)
        for role, v in shape.items():
            name = f.name_of(role)
            p[name] = sp.param(name).clamp(v) if name in sp.names else v
        if f.experts_as == "count":
            p[f.name_of("top_k")] = min(p[f.name_of("top_k")], p[f.name_of("experts")])
        p[f.name_of("tokens")] = budget / self.flops_per_token(p)
        p[f.name_of("warmup")] = self.k.warm0
        p[f.name_of("batch")] = sp.param(f.name_of("batch")).clamp(self.optima(p)["batch"])
        p[f.name_of("lr")] = sp.param(f.name_of("lr")).clamp(self.optima(p)["lr"])
        if f.weight_decay:
            p[f.name_of("wd")] = sp.param(f.name_of("wd")).clamp(self.optima(p)["wd"])
        return p

    def optimal_loss(self, budget: float) -> float:
        return _optimum(self, float(budget))[0]

    def optimal_config(self, budget: float) -> dict[str, Any]:
        return dict(_optimum(self, float(budget))[1])


def _space(f: WorldForm, index: int) -> SearchSpace:
    n = f.name_of
    params = [
        Param(n("width"), "log", 64, 8192, center=256, multiple_of=64, scales_cost=True),
        Param(n("depth"), "log", 2, 64, center=6, integer=True, scales_cost=True),
        Param(n("top_k"), "int", 1, 4, center=2, scales_cost=True),
        Param(n("tokens"), "log", 1e7, 1e13, center=1e9, scales_cost=True),
        Param(n("lr"), "log", 1e-5, 0.3, center=2e-3),
        Param(n("warmup"), "logit", 0.002, 0.3, center=0.02),
    ]
    if f.experts_as == "ratio":
        params.append(Param(n("experts"), "log", 1, 8, center=4, scales_cost=True))
    else:
        params.append(Param(n("experts"), "log", 1, 64, center=8, integer=True, scales_cost=True))
    if f.batch_unit == "tokens":
        params.append(
            Param(
                n("batch"),
                "log",
                8 * SEQ_LEN,
                8192 * SEQ_LEN,
                center=128 * SEQ_LEN,
                multiple_of=SEQ_LEN,
            )
        )
    else:
        params.append(Param(n("batch"), "log", 8, 8192, center=128, integer=True))
    if f.moe == "granular":
        params.append(
            Param(n("granularity"), "log", 1, 8, center=2, integer=True, scales_cost=True)
        )
    if f.weight_decay:
        params.append(Param(n("wd"), "log", 1e-4, 3.0, center=0.1))
    cons = (Constraint(f"{n('top_k')} <= {n('experts')}"),) if f.experts_as == "count" else ()
    return SearchSpace(params=tuple(params), constraints=cons, fixed={"world": index})


@lru_cache(maxsize=4096)
def _optimum(world: FamilyWorld, budget: float) -> tuple[float, tuple[tuple[str, Any], ...]]:
    best: tuple[float, dict[str, Any]] | None = None
    granular = world.form.moe == "granular"
    sp = world.space()
    tok = sp.param(world.form.name_of("tokens"))
    for k in (1, 2, 3, 4):

        def f(x: np.ndarray, k: int = k) -> float:
            shape = _shape_of(x, k, world, granular)
            p = world.complete(shape, budget)
            t = float(p[world.form.name_of("tokens")])
            soft = 10.0 * (max(math.log(tok.min / t), 0) + max(math.log(t / tok.max), 0))
            loss = world.true_loss(p)
            return math.log(loss) + soft if math.isfinite(loss) else 50.0

        for start in ([5.5, 1.8, 1.5, 0.7], [7.0, 2.8, 2.5, 0.7], [6.2, 2.2, 0.5, 0.0]):
            res = minimize(
                f,
                start[: 4 if granular else 3],
                method="Nelder-Mead",
                options={"xatol": 1e-4, "fatol": 1e-10, "maxiter": 4000},
            )
            p = world.complete(_shape_of(res.x, k, world, granular), budget)
            t = float(p[world.form.name_of("tokens")])
            if not (tok.min <= t <= tok.max):
                continue
            val = world.true_loss(p)
            if best is None or val < best[0]:
                best = (val, p)
    if best is None:
        raise ValueError(f"world {world.index}: no legal config costs {budget:.3g} FLOPs")
    return best[0], tuple(sorted(best[1].items()))


def _shape_of(x: np.ndarray, k: int, world: FamilyWorld, granular: bool) -> dict[str, float]:
    ratio = math.exp(min(max(x[2], 0.0), 5.0))
    experts = ratio if world.form.experts_as == "ratio" else ratio * k
    shape = {"width": math.exp(x[0]), "depth": math.exp(x[1]), "experts": experts, "top_k": k}
    if granular:
        shape["granularity"] = math.exp(min(max(x[3], 0.0), 2.1))
    return shape


# ---- the family ----------------------------------------------------------------------------------
def draw_world(index: int, seed: int = FAMILY_SEED) -> FamilyWorld:
    """World `index` of the family: forms and constants drawn independently, reproducibly."""
    r = np.random.default_rng([seed, index])

    def pick(options: tuple[Any, ...]) -> Any:
        return options[int(r.integers(len(options)))]

    def jitter(v: float, rel: float) -> float:
        return float(v * math.exp(r.normal(0.0, rel)))

    names = tuple((role, pick(options)) for role, options in ROLE_NAMES.items() if r.random() < 0.5)
    loss = pick(("additive", "additive", "smooth"))
    form = WorldForm(
        loss=loss,
        smooth=float(r.uniform(0.6, 1.6)) if loss == "smooth" else 1.0,
        moe=pick(("logquad", "rational", "granular")),
        experts_as=pick(("count", "ratio")),
        lr_follows=pick(("N", "D", "C", "width_batch")),
        batch_follows=pick(("D", "C")),
        batch_unit=pick(("sequences", "tokens")),
        aspect=bool(r.random() < 0.6),
        weight_decay=bool(r.random() < 0.4),
        penalty=pick(("linear", "exp")),
        noise=float(math.exp(r.uniform(math.log(0.003), math.log(0.03)))),
        div_ratio=float(r.uniform(2.0, 6.0)),
        names=names,
    )
    base = WorldConstants()
    alpha = jitter(base.alpha, 0.08)
    beta = jitter(alpha * base.beta / base.alpha, 0.08)  # size and data exponents stay close
    if index >= SIZE_EXPONENT_WORLDS:
        a = float(r.uniform(0.3, 0.75))
        beta = alpha * a / (1.0 - a)
    A, B = _coefficients(alpha, beta, r)
    k = replace(
        base,
        E=jitter(base.E, 0.1),
        A=A,
        B=B,
        alpha=alpha,
        beta=beta,
        gain_exp=jitter(base.gain_exp, 0.2),
        gain_sat=jitter(base.gain_sat, 0.25),
        data_cost=jitter(base.data_cost, 0.3),
        lr0=jitter(base.lr0, 0.4),
        lr_exp=jitter(base.lr_exp, 0.25),
        b0=jitter(base.b0, 0.4),
        b_exp=jitter(base.b_exp, 0.2),
        aspect0=jitter(base.aspect0, 0.3),
        aspect_exp=jitter(base.aspect_exp, 0.3),
        w_lr_hi=jitter(base.w_lr_hi, 0.3),
        w_lr_lo=jitter(base.w_lr_lo, 0.3),
        w_bs=jitter(base.w_bs, 0.3),
        w_aspect=jitter(base.w_aspect, 0.3),
    )
    return FamilyWorld(index, form, k)


def _coefficients(alpha: float, beta: float, r: np.random.Generator) -> tuple[float, float]:
    """A and B such that a dense model at 1e20 FLOPs is compute-optimal at a drawn tokens per
    parameter (8-150, the span of published recipes) with a drawn reducible loss (0.4-1.2
    nats): independent draws of A and B would give optima at 2 or 9,000 tokens per parameter."""
    rho = math.exp(r.uniform(math.log(8.0), math.log(150.0)))
    reducible = math.exp(r.uniform(math.log(0.4), math.log(1.2)))
    n = math.sqrt(1e20 / (6.0 * rho))
    size_term = reducible * beta / (alpha + beta)  # at the optimum alpha A/N^a = beta B/D^b
    return size_term * n**alpha, (alpha / beta) * size_term * (rho * n) ** beta


def trials_around_optimum(
    world: FamilyWorld, budgets: np.ndarray, rng: np.random.Generator, spread: float = 0.6
) -> list[Any]:
    """Runs at `budgets` FLOPs around the world's optimum, every searched value but the tokens
    perturbed by up to e^+-spread (the tokens then meet the budget), as a converged optimizer
    would leave them: `TrialPoint`s, evaluated with noise."""
    from carbs.scaling.types import TrialPoint

    space, f = world.space(), world.form
    out = []
    for budget in budgets:
        cfg = dict(world.optimal_config(float(budget)))
        for p in space.params:
            if p.name != f.name_of("tokens"):
                cfg[p.name] = p.clamp(float(cfg[p.name]) * math.exp(rng.uniform(-spread, spread)))
        if f.experts_as == "count":
            cfg[f.name_of("top_k")] = min(cfg[f.name_of("top_k")], cfg[f.name_of("experts")])
        cfg[f.name_of("tokens")] = float(budget) / world.flops_per_token(cfg)
        loss, cost = world.evaluate(cfg, rng)
        out.append(TrialPoint(cfg, cost, loss, loss is None))
    return out


def family(n: int = FAMILY_SIZE, seed: int = FAMILY_SEED) -> list[FamilyWorld]:
    return [draw_world(i, seed) for i in range(n)]


def world_of(params: Mapping[str, Any]) -> FamilyWorld:
    """The world a params dict belongs to (its fixed `world` index, family seed FAMILY_SEED)."""
    return draw_world(int(params["world"]))


# ---- entry points for a sweep of a world ---------------------------------------------------------
def evaluate(params: dict[str, Any], context: Any = None) -> dict[str, float]:
    """A sweep workload: one noisy trial of the world named by `params["world"]`."""
    world = world_of(params)
    seed = int(getattr(context, "seed", 0) or 0)
    rng = np.random.default_rng([seed, int(1e6 * world.cost(params)) % (2**32)])
    loss, cost = world.evaluate(params, rng)
    if loss is None:
        raise ConfigFailure("diverged: learning rate past this world's cliff", reason="diverged")
    return {"loss": loss, "cost": cost}


def cost(params: Mapping[str, Any]) -> float:
    return world_of(params).cost(params)


def active_params(params: Mapping[str, Any]) -> float:
    return world_of(params).active_params(params)
