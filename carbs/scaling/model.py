"""The scaling model: fitted once from runs, then asked what a config's loss is, where each
setting's optimum is, how to split a budget, and what to train at a target compute.

    model = ScalingModel.fit(evidence)                      # stages below, structure by backtest
    model.loss(size=1e9, tokens=2e10, settings={"learning_rate": 3e-4})   -> Prediction
    model.optimum("learning_rate", size=1e9, tokens=2e10)   -> SettingOptimum
    model.allocation(1e21)                                  -> Allocation (N, D, loss)

Stages: evidence -> frontier (Pareto set, each run's nearness) -> loss model (structure chosen
by a rolling-origin backtest, then fitted with a bootstrap) -> queries. The pick for a target
(`carbs.scaling.pick`) composes these queries with the shape solver.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from carbs.pareto import pareto_mask
from carbs.scaling import huber as hb
from carbs.scaling.evidence import Evidence, SettingAxis
from carbs.scaling.frontier import FrontierBoot, fit_frontier_boot
from carbs.scaling.lossmodel import (
    SPARSITY,
    FitData,
    LossFit,
    base_fit,
    fit_loss_model,
)
from carbs.scaling.optima import (
    Allocation,
    SettingOptimum,
    allocate,
    setting_optima,
    weigh_with_runs,
)
from carbs.scaling.policy import DEFAULT_POLICY, Policy
from carbs.scaling.prediction import Prediction, extrapolation_distance, form_error, predict
from carbs.scaling.selection import Selection, SettingsPlan, select_structure

ASPECT = "aspect"  # the shape's log(width / depth), modelled as a derived setting
FRONTIER_PARAMETERS = 3  # the frontier law L(C) = E + A C^-alpha (carbs.scaling.frontier)


@dataclass(frozen=True)
class Frontier:
    """The successful runs' Pareto set, the frontier law L(C), and each run's nearness."""

    boot: FrontierBoot
    pareto: np.ndarray  # mask over successful runs
    excess: np.ndarray  # log loss above the frontier law, per successful run
    weight: np.ndarray  # the run's importance in the loss model's fit
    scale: float  # the near-frontier scatter the weights are relative to


@dataclass(frozen=True)
class ScalingModel:
    """A fitted scaling model (all stages' results) and the policy it was fitted under."""

    evidence: Evidence
    frontier: Frontier
    data: FitData
    selection: Selection
    fit: LossFit
    policy: Policy
    axes: Mapping[str, SettingAxis] = field(default_factory=dict)  # settings' coordinates
    counts: np.ndarray | None = None  # the bootstrap's multiplicities, for every stage
    warnings: tuple[str, ...] = field(default_factory=tuple)
    unlocated: tuple[str, ...] = ()  # optima the runs neither bracket nor pin down

    # ---- fitting -----------------------------------------------------------------------
    @classmethod
    def fit_evidence(
        cls, ev: Evidence, policy: Policy = DEFAULT_POLICY, n_bootstrap: int = 200, seed: int = 0
    ) -> ScalingModel:
        """Fit every stage. Raises ValueError with fewer than `policy.min_runs` successes."""
        if ev.n_ok < policy.min_runs:
            raise ValueError(
                f"a scaling model needs at least {policy.min_runs} successful runs, "
                f"got {ev.n_ok}: run more of the sweep first"
            )
        warnings = list(ev.warnings)
        if ev.n_ok < policy.few_runs:
            warnings.append(f"only {ev.n_ok} successful runs: the laws are weakly determined")
        front = frontier_stage(ev, policy)
        data = fit_data(ev, front.weight, policy)
        sel = select_structure(data, ev.cost[ev.ok], settings_plan(ev, data, policy), policy)
        warnings.extend(sel.warnings)
        rng = np.random.default_rng(seed)
        counts = hb.bootstrap_weights(ev.n_ok, n_bootstrap, rng) if n_bootstrap else None
        base = base_fit(data)
        fit = fit_loss_model(data, sel.structure, base, counts, iters=policy.fit_iters)
        why = degenerate(fit, data, policy)
        if why:
            warnings.append(
                f"the loss law is not determined by these runs ({why}): its "
                "extrapolation leans on the priors"
            )
        lost = unlocated_settings(fit, data, policy.near_weight)
        # kept in the loss law: refitted without such a term, the law's predictions got worse
        # (family median |error| 3.0 -> 3.2 %, coverage 96 -> 83 %)
        warnings.extend(
            f"the near-frontier runs neither bracket nor pin down the fitted optimum of {name}: "
            "it is taken where the costliest of them set it, moved by its published law "
            "(weight decay's timescale) or else its drift prior"
            for name in lost
        )
        axes = model_axes(ev, data)
        return cls(ev, front, data, sel, fit, policy, axes, counts, tuple(warnings), lost)

    # ---- queries -------------------------------------------------------------------------
    @property
    def max_cost(self) -> float:
        return float(np.max(self.evidence.cost[self.evidence.ok]))

    def overhead(self) -> float:
        """C / (6 N D) of the near-frontier runs at the top of compute (the FLOPs a run spends
        beyond 6 per counted parameter and token: attention, the output head)."""
        ev = self.evidence
        ok = np.flatnonzero(ev.ok)
        top = np.argsort(ev.cost[ok])[-max(3, len(ok) // 4) :]
        return float(np.average(ev.overhead()[ok][top], weights=self.frontier.weight[top] + 1e-12))

    def scale_at(
        self, size: float, tokens: float, extra: Mapping[str, float] | None = None
    ) -> dict[str, float]:
        """The scale variables of a run of `size` parameters and `tokens` tokens."""
        out = {
            "log N": math.log(size),
            "log D": math.log(tokens),
            "log C": math.log(6.0 * self.overhead() * size * tokens),
        }
        out.update(extra or {})
        if SPARSITY in self.fit.x0:
            out.setdefault(SPARSITY, self.fit.x0[SPARSITY])
        return out

    def optima(
        self,
        size: float,
        tokens: float,
        extra: Mapping[str, float] | None = None,
        chosen: Mapping[str, float] | None = None,
    ) -> dict[str, SettingOptimum]:
        """Every setting's optimum for a run of this size and data (`extra`: log width,
        sparsity, a setting's z when another follows it; `chosen`: z of settings picked off
        their optimum, which the settings following them read); an unlocated one's from
        `runs_optimum`."""
        scale = self.scale_at(size, tokens, extra)

        def elsewhere(
            name: str, cov: Mapping[str, float]
        ) -> tuple[float, float, tuple[str, ...]] | None:
            if name in self.unlocated:
                return (*self.runs_optimum(name, cov), ("the near-frontier runs' trend",))
            term = self.fit.structure.term(name)
            if term.lopsided or name == ASPECT:  # the lr's own rule; the shape's own solver
                return None
            z, sd = weigh_with_runs(self.fit.optimum_z(name, cov), self.runs_optimum(name, cov))
            return z, sd, (*term.follows, "weighed with the near-frontier runs")

        return setting_optima(
            self.fit, self.axes, scale, self.policy.clamp_settings, elsewhere, chosen
        )

    def top_runs(self) -> np.ndarray:
        """Mask over the successful runs: near the frontier and in the top e-fold of compute
        (where the runs show what they found at their largest); the near ones, or all, where
        fewer than two qualify."""
        d = self.data
        near = d.weight >= self.policy.near_weight
        top = near & (d.cov["log C"] >= math.log(self.max_cost) - 1.0)
        for mask in (top, near):
            if int(mask.sum()) >= 2:
                return mask
        return np.ones_like(near)

    def runs_optimum(self, name: str, cov: Mapping[str, float]) -> tuple[float, float]:
        """(z, sd) of `name` where the near-frontier runs at the top of compute set it, moved
        to the scale `cov`: by its published law where it has one (`SettingTerm.slope_means`,
        e.g. weight decay's timescale, ~ batch / (lr D): each run's value less the law's part
        at its own scale, read at `cov`), else by its drift prior along the compute path. What
        is known of an optimum the runs cannot locate. The sd: their spread, and the drift
        prior's over the reach."""
        d = self.data
        pick = self.top_runs()
        term = self.fit.structure.term(name)
        law = [(v, m) for v, m in term.slope_means if v in d.cov and v in cov]
        z = d.z[name][pick] - sum(m * d.cov[v][pick] for v, m in law)
        w = d.weight[pick]
        mid = float(np.average(z, weights=w))
        spread = math.sqrt(float(np.average((z - mid) ** 2, weights=w)))
        reach = max(cov["log C"] - math.log(self.max_cost), 0.0)
        mean, sd = term.drift or (0.0, 0.0)
        if law:
            return mid + sum(m * float(cov[v]) for v, m in law), math.hypot(spread, sd * reach)
        return mid + mean * reach, math.hypot(spread, sd * reach)

    def allocation(
        self, compute: float, sparsity: float | None = None, overhead: float | None = None
    ) -> Allocation:
        """The compute-optimal size and tokens at `compute` FLOPs, settings at their optima
        (`overhead`: C / (6 N D) to solve at; default the top runs')."""
        u = sparsity if sparsity is not None else self.fit.x0.get(SPARSITY)
        centre = float(np.average(self.data.log_n, weights=self.data.weight))
        return allocate(self.fit, compute, overhead or self.overhead(), u, centre)

    def log_loss_rows(
        self,
        size: float,
        tokens: float,
        settings: Mapping[str, float],
        extra: Mapping[str, float] | None = None,
    ) -> np.ndarray:
        """log L per bootstrap row; `settings` are values (a missing one is at its optimum)."""
        z = {
            k: float(self.axes[k].to_z(v)) if k in self.axes else float(v)
            for k, v in settings.items()
        }
        scale = self.scale_at(size, tokens, extra)
        scale.update({f"z {k}": v for k, v in z.items()})
        return self.fit.log_loss(math.log(size), math.log(tokens), z, scale)

    def loss(
        self,
        size: float,
        tokens: float,
        settings: Mapping[str, float] | None = None,
        extra: Mapping[str, float] | None = None,
    ) -> Prediction:
        """The predicted loss of a run, with its 90 % interval (bootstrap and model form)."""
        rows = self.log_loss_rows(size, tokens, settings or {}, extra)
        compute = 6.0 * self.overhead() * size * tokens
        return self.predict_rows(rows, compute)

    def predict_rows(self, log_loss_rows: np.ndarray, compute: float) -> Prediction:
        ev = self.evidence
        form = form_error(self.selection, ev.cost[ev.ok], ev.loss[ev.ok])
        reach = max(math.log(compute / self.max_cost), 0.0)
        distance = float(extrapolation_distance(compute, ev.cost[ev.ok])[0])
        return predict(log_loss_rows, form, reach, distance)


# ---- stages ------------------------------------------------------------------------------------
def degenerate(fit: LossFit, data: FitData, policy: Policy) -> str | None:
    """Why a fit cannot be trusted to extrapolate, or None: an irreducible loss collapsed toward
    0, or an exponent outside what any published law has. Such fits trade E against a small
    exponent along a ridge of near-equal fit (seen: E = 0.007 with beta 0.15, picking a model
    7x too small); the prior on E holds most such fits back, and the rest are said."""
    chin = fit.chinchilla_rows()[0]
    e, lowest = math.exp(chin[2]), math.exp(float(np.min(data.log_loss)))
    if e < policy.e_collapsed * lowest:
        return f"E = {e:.3g} collapsed toward 0 (lowest loss {lowest:.3g})"
    lo, hi = policy.plausible_exponents
    for name, v in (("alpha", chin[3]), ("beta", chin[4])):
        if not lo <= v <= hi:
            return f"{name} = {v:.3g} outside the plausible {lo}-{hi}"
    return None


def unlocated_settings(fit: LossFit, data: FitData, near_weight: float = 0.5) -> tuple[str, ...]:
    """Settings whose fitted optimum the near-frontier runs (weight >= near_weight) neither bracket
    nor pin down: at those runs' own scale it lies outside every value they tried, and its
    bootstrap sd there exceeds their own spread. Seen both ways on the world family: an lr
    optimum 10x below every good run (sd ~1 in log) was extrapolated to 0.06x the true
    optimum (regret 90 %), while a weight decay's optimum 2.5x above every run, pinned by a
    well-fitted curvature (sd 0.1), was right."""
    near = np.flatnonzero(data.weight >= near_weight)
    if len(near) < 3:
        return ()
    w = data.weight[near]
    out = []
    for term in fit.structure.settings:
        if term.name == ASPECT:  # combined with the runs' trend where the shape is solved
            continue
        rows = np.array(
            [fit.optimum_z(term.name, {k: float(v[i]) for k, v in data.cov.items()}) for i in near]
        )  # (runs, bootstrap rows)
        mids = np.average(rows, axis=0, weights=w)
        tried = data.z[term.name][near]
        spread = math.sqrt(
            float(np.average((tried - np.average(tried, weights=w)) ** 2, weights=w))
        )
        sd = float(np.std(mids[1:])) if len(mids) > 2 else math.inf
        bracketed = float(np.min(tried)) <= float(mids[0]) <= float(np.max(tried))
        if not bracketed and sd > spread:
            out.append(term.name)
    return tuple(out)


def frontier_stage(ev: Evidence, policy: Policy) -> Frontier:
    """The Pareto set and frontier law of the successful runs, and each run's weight: full on
    and below the frontier, falling with the excess loss above it on the near-frontier scale."""
    ok = ev.ok
    cost, loss = ev.cost[ok], ev.loss[ok]
    boot = fit_frontier_boot(cost, loss, np.ones((1, len(cost))))
    pareto = pareto_mask(cost, loss)
    excess = np.log(loss) - np.log(boot.predict(cost)[0])
    near = frontier_scatter(excess[pareto])
    scale = max(policy.nearness_scale_floor, policy.nearness_scale_factor * near)
    floor = policy.nearness_floor if ev.settings or ev.aspect is not None else 0.0
    weight = np.maximum(np.exp(-0.5 * (np.maximum(excess, 0.0) / scale) ** 2), floor)
    return Frontier(boot, pareto, excess, weight, scale)


def frontier_scatter(excess: np.ndarray) -> float:
    """The Pareto runs' scatter about the frontier law: their RMS excess over the law, on the
    degrees of freedom its three parameters leave (the plain RMS of a fit's own residuals
    understates the noise: by 18 % with nine Pareto runs)."""
    n = len(excess)
    if n == 0:
        return 0.0
    return float(np.sqrt(np.sum(excess**2) / max(n - FRONTIER_PARAMETERS, 1)))


def fit_data(ev: Evidence, weight: np.ndarray, policy: Policy) -> FitData:
    """The successful runs as the loss model sees them: log N, log D, log loss, settings' z
    (the aspect ratio among them where it varies) and every scale variable."""
    ok = ev.ok
    scales = {k: v[ok] for k, v in ev.scales().items()}
    z = {k: v[ok] for k, v in ev.settings.items()}
    if ev.aspect is not None and float(np.std(ev.aspect[ok])) > policy.min_spread:
        z[ASPECT] = ev.aspect[ok]
    return FitData(
        np.log(ev.size[ok]), np.log(ev.tokens[ok]), np.log(ev.loss[ok]), z, scales, weight
    )


def model_axes(ev: Evidence, data: FitData) -> dict[str, SettingAxis]:
    """The settings' coordinates: the searched ones', and the aspect's, whose range is what the
    runs tried (it is not searched, and past what they tried they show nothing)."""
    axes = dict(ev.axes)
    if ASPECT in data.z:
        axes[ASPECT] = SettingAxis(
            ASPECT, "identity", float(np.min(data.z[ASPECT])), float(np.max(data.z[ASPECT]))
        )
    return axes


def settings_plan(ev: Evidence, data: FitData, policy: Policy) -> SettingsPlan:
    """The settings the model fits (those the runs vary), as many as the runs support, the lr
    kept first, then the batch, the others, the aspect; in the model the batch comes first (the
    lr's optimum may follow it). And the extra scale variables each may follow: the lr the
    width and the batch; others the lr and the batch."""
    roles = ev.roles
    varied = [s for s in data.z if float(np.std(data.z[s])) > policy.min_spread]
    first = [s for s in (roles.lr, roles.get("batch")) if s in varied]
    priority = first + [s for s in varied if s not in first and s != ASPECT]
    priority += [ASPECT] if ASPECT in varied else []
    budget = len(data.log_n) / policy.runs_per_parameter - 5
    chosen: list[str] = []
    for s in priority:
        need = 4 + (s == roles.lr)
        if budget >= need:
            chosen.append(s)
            budget -= need
    batch = roles.get("batch")
    kept = ([batch] if batch in chosen else []) + [s for s in chosen if s != batch]
    extras: dict[str, tuple[str, ...]] = {}
    for s in kept:
        if s == ASPECT:
            continue
        cand = []
        if s == roles.lr:
            batch = f"z {roles.get('batch')}" if roles.get("batch") in kept else None
            cand = [v for v in ("log width", batch) if v is not None and v in data.cov]
        else:
            cand = [
                f"z {o}"
                for o in (roles.lr, roles.get("batch"))
                if o in kept and o != s and kept.index(o) < kept.index(s)
            ]
        extras[s] = tuple(cand)
    drift = {s: policy.other_drift for s in kept if s != ASPECT}
    drift.update({roles.get(r): (m, sd) for r, m, sd in policy.role_drift if roles.get(r) in kept})
    return SettingsPlan(
        tuple(kept),
        extras,
        roles.lr,
        drift,
        role_slopes(ev, kept, extras, policy),
        role_signs(ev, kept, policy),
    )


def role_signs(
    ev: Evidence, kept: list[str], policy: Policy
) -> dict[str, tuple[tuple[str, int], ...]]:
    """The signs published laws agree on (`policy.role_slope_signs`), by the settings' names:
    "z batch" names the batch's z."""
    roles, out = ev.roles, {}
    alias = {"z batch": f"z {roles.get('batch')}"}
    for role, signs in policy.role_slope_signs:
        name = roles.get(role)
        if name in kept:
            out[name] = tuple((alias.get(v, v), sign) for v, sign in signs)
    return out


def role_slopes(
    ev: Evidence, kept: list[str], extras: Mapping[str, tuple[str, ...]], policy: Policy
) -> dict[str, tuple[tuple[str, float], ...]]:
    """Prior slope means from published laws (`policy.role_slopes`), for settings searched in
    log whose law's variables the model has: "z lr" and "z batch" name the lr's and batch's z."""
    roles, out = ev.roles, {}
    alias = {"z lr": f"z {roles.lr}", "z batch": f"z {roles.get('batch')}"}
    for role, law in policy.role_slopes:
        name = roles.get(role)
        ax = ev.axes.get(name) if name else None
        if name not in kept or ax is None or ax.kind != "log":
            continue
        follows = {"log N", "log D", *extras.get(name, ())}
        means = tuple((alias.get(v, v), m) for v, m in law if alias.get(v, v) in follows)
        if means:
            out[name] = means
    return out


def model_summary(model: ScalingModel) -> dict[str, Any]:
    """What the model is and why, for reports, the API and the store (JSON-ready)."""
    fit, sel = model.fit, model.selection
    rows = fit.chinchilla_rows()
    chin = rows[0]
    return {
        "structure": fit.structure.describe(),
        "selection": list(sel.decisions),
        "backtest_rms_log_error": sel.backtest_error,
        "candidates": [{"structure": s.structure.describe(), "score": s.score} for s in sel.tried],
        "irreducible_loss": float(math.exp(chin[2])),
        "size_exponent": float(chin[3]),
        "data_exponent": float(chin[4]),
        "irreducible_loss_ci90": [math.exp(v) for v in _ci90(rows[:, 2])],
        "size_exponent_ci90": _ci90(rows[:, 3]),
        "data_exponent_ci90": _ci90(rows[:, 4]),
        "n_runs": int(model.evidence.n_ok),
        "n_failed": int(model.evidence.failed.sum()),
        "size_measure": model.evidence.size_source,
        "flops_overhead": model.overhead(),
        "roles": dict(model.evidence.roles.names),
        "warnings": list(model.warnings),
    }


def _ci90(column: np.ndarray) -> list[float]:
    """The 5 % and 95 % bootstrap quantiles of a fitted parameter (rows 1..; row 0 alone
    where there is no bootstrap), for legends that show a fit with its spread."""
    boot = column[1:] if len(column) > 2 else column
    return [float(v) for v in np.quantile(boot, [0.05, 0.95])]
