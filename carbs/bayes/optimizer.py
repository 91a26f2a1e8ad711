"""CARBS rebuilt on BoTorch: cost-aware local Bayesian search around the Pareto frontier.

Ask/tell: `suggest(n, pending)` returns n distinct feasible configs for n idle workers,
`observe(obs)` records a success (loss, cost) or a failure, `forget(id)` drops an outstanding
suggestion. The state is a pure function of (space, seed, observations in order): every random
draw comes from a generator seeded by (seed, #observations, #pending), and GP fits start from
fixed hyperparameters under a seeded torch RNG, so a rebuilt optimizer replays to the same
suggestion.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from carbs.bayes.acquisition import (
    acquisition_value,
    clamped_pareto_value,
    log_expected_improvement,
    log_success_probability,
    random_threshold_cost,
)
from carbs.bayes.costband import (
    BAND_PRIOR_WIDENING,
    CostAim,
    band_target,
    cost_directed_samples,
    fill_target,
    frontier_origin_costs,
    in_band,
)
from carbs.bayes.encoding import ConfigKey, SpaceEncoder
from carbs.bayes.models import FittedGP, fit_gp
from carbs.bayes.resample import (
    GP_NOISE_FLOOR_RATIO,
    NOISE_FIT_POINTS_PER_DIM,
    noise_sd,
    uncertain_member,
)
from carbs.bayes.settings import CarbsSettings
from carbs.bayes.spending import SpendingLimits, SpendingPlan, ceiling_mask, spending_plan
from carbs.bayes.subset import training_subset
from carbs.bayes.surrogates import Surrogates, fit_surrogates
from carbs.optimizer import Observation, Suggestion
from carbs.space import SearchSpace


class CarbsOptimizer:
    """Cost-Aware pareto-Region Bayesian Search (CARBS) behind the `Optimizer` protocol."""

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        price: Callable[[dict[str, Any]], float | None] | None = None,
        **settings: Any,
    ) -> None:
        """`price(full_params)`: a config's exact cost where the workload knows it before
        running (FLOPs from the shape); it replaces the cost model's guess when candidates are
        masked at `max_suggestion_cost` and placed in cost bands, so no trial is proposed past
        the cap. Observations still train the cost model."""
        self.space = space
        self.seed = int(seed)
        self.price = price
        self.settings = CarbsSettings.from_mapping(settings)
        self.encoder = SpaceEncoder(
            space, self.settings.search_radius, self.settings.categorical_switch_prob
        )
        self.observations: list[Observation] = []
        self.outstanding: dict[str, dict[str, Any]] = {}
        self.last_info: list[dict[str, float]] = []
        self._fitted: tuple[int, Surrogates] | None = None
        self._anchor_hyper: dict[int, dict[str, Any]] = {}
        self._noise_memo: dict[int, float | None] = {}

    # ---- tell -----------------------------------------------------------------------------
    def observe(self, observation: Observation) -> None:
        missing = [n for n in self.space.names if n not in observation.params]
        if missing:
            raise ValueError(
                f"observation is missing searched params {missing}; pass every searched param "
                "(fixed constants are not needed)"
            )
        self.observations.append(observation)
        if observation.suggestion_id is not None:
            self.outstanding.pop(observation.suggestion_id, None)

    def forget(self, suggestion_id: str) -> None:
        self.outstanding.pop(suggestion_id, None)

    # ---- ask ------------------------------------------------------------------------------
    def suggest(
        self,
        n: int = 1,
        pending: Sequence[Mapping[str, Any]] | None = None,
        tried: Sequence[Mapping[str, Any]] = (),
        tried_spent: float = 0.0,
    ) -> list[Suggestion]:
        """n distinct feasible suggestions.

        pending: configs of in-flight trials. None means "the suggestions this object handed out
        and has not seen observed or forgotten"; a sweep that rebuilds the optimizer passes them
        explicitly, and then they are the only pending ones considered.
        tried: configs that ran without a result to tell (stopped early): never suggested
        again, and not in flight (they spend nothing more; a suggestion of this object so
        stopped is settled). tried_spent: what they spent in all; with `tried`, counted by the
        spending plan as money and trials used (else a stopped trial would look free, or in
        flight at its full cost forever).
        """
        if n < 0:
            raise ValueError(f"suggest: n must be >= 0, got {n}")
        tried_keys = {self.encoder.key(self.space.canonical(p)) for p in tried}
        self._settle_tried(tried_keys)
        pend = [
            self.space.canonical(p)
            for p in (self.outstanding.values() if pending is None else pending)
        ]
        rng = np.random.default_rng([self.seed, len(self.observations), len(pend)])
        successes = [o for o in self.observations if _is_success(o)]
        failures = [o for o in self.observations if not _is_success(o)]
        observed = {self.encoder.key(self.space.canonical(o.params)) for o in self.observations}
        excluded = observed | {self.encoder.key(p) for p in pend}
        excluded |= tried_keys
        self.last_info = []
        if len(successes) < max(1, self.settings.num_random_samples):
            picks = self._random_picks(n, excluded, rng, include_centre=True)
        else:
            state = self._surrogates(successes, failures)
            picks = []
            resample = self._resample_pick(state, pend, successes)
            if resample is not None and n > 0:
                picks.append(resample)
                self.last_info.append({"resample": 1.0})
            plan = self._spending(state, pend + picks, tried_spent, len(tried))
            picks += self._bayes_picks(state, n - len(picks), pend, excluded, rng, plan)
        out = [Suggestion(params=p) for p in picks]
        for s in out:
            self.outstanding[s.suggestion_id] = dict(s.params)
        return out

    # ---- internals ------------------------------------------------------------------------
    def _settle_tried(self, tried_keys: set[ConfigKey]) -> None:
        """Forget handed-out suggestions whose config has been stopped: not in flight any more."""
        for sid, p in list(self.outstanding.items()):
            if self.encoder.key(self.space.canonical(p)) in tried_keys:
                del self.outstanding[sid]

    def _surrogates(self, successes: list[Observation], failures: list[Observation]) -> Surrogates:
        """Models for the current observations.

        Hyperparameters are fitted in full only at "anchor" counts (every observation while
        there are few, then every ~`refit_fraction`); between anchors the anchor's
        hyperparameters are reused on the current data (only Cholesky factors are recomputed).
        The anchor fit uses the first `anchor` observations, so a rebuilt optimizer recomputes
        exactly the same values: the state stays a pure function of the observations.
        """
        n = len(self.observations)
        if self._fitted is not None and self._fitted[0] == n:
            return self._fitted[1]
        anchor = anchor_count(n, self.settings.refit_fraction)
        hyper = self._anchor_hyper.get(anchor)
        memo_key = self._memo_key(anchor) if hyper is None else None
        if hyper is None and memo_key in _ANCHOR_MEMO:
            hyper = _ANCHOR_MEMO[memo_key]
            self._anchor_hyper = {anchor: hyper}
        if hyper is None:
            prefix = self.observations[:anchor]
            s_prefix = [o for o in prefix if _is_success(o)]
            f_prefix = [o for o in prefix if not _is_success(o)]
            hyper = {}
            if s_prefix:
                fitted = fit_surrogates(
                    self.encoder, s_prefix, f_prefix, self.settings, self._fit_seed(anchor)
                )
                hyper = fitted.hyperparameters()
                if anchor == n:
                    self._fitted = (n, fitted)
            self._anchor_hyper = {anchor: hyper}
            _remember(memo_key, hyper)
            if self._fitted is not None and self._fitted[0] == n:
                return self._fitted[1]
        state = fit_surrogates(
            self.encoder, successes, failures, self.settings, self._fit_seed(n), hyper
        )
        self._fitted = (n, state)
        return state

    def _memo_key(self, anchor: int) -> str:
        """Digest of everything the anchor fit depends on (space, seed, settings, the first
        `anchor` observations), so a rebuilt optimizer in the same process skips the refit."""
        h = hashlib.sha1(repr((self.space, self.seed, self.settings)).encode())
        for o in self.observations[:anchor]:
            h.update(repr((sorted(o.params.items()), o.cost, o.loss, o.failed)).encode())
        return h.hexdigest()

    def _fit_seed(self, n: int) -> int:
        return int(np.random.default_rng([self.seed, n]).integers(2**31))

    def _candidates(
        self,
        origins: np.ndarray,
        count: int,
        excluded: set[ConfigKey],
        rng: np.random.Generator,
        aim: CostAim | None = None,
    ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Up to `count` distinct, feasible, not-yet-tried configs sampled around `origins`
        (aimed at a cost when `aim` is given)."""
        params: list[dict[str, Any]] = []
        seen = set(excluded)
        radius = self.encoder.radius
        s = self.settings
        for attempt in range(6):
            if aim is not None:
                raw = cost_directed_samples(
                    self.encoder, origins, aim, 2 * count, rng, s.radius_scales
                )
            else:
                raw = self.encoder.sample(origins, 2 * count, rng, s.radius_scales)
            for z in raw:
                p = self.encoder.decode(z)
                k = self.encoder.key(p)
                if k in seen or not self.space.is_feasible(p):
                    continue
                seen.add(k)
                params.append(p)
                if len(params) >= count:
                    break
            if len(params) >= count or (params and attempt >= 1):
                break
            self.encoder.radius = radius * 2 ** (attempt + 1)  # widen when the region is used up
        self.encoder.radius = radius
        return self.encoder.encode_many(params), params

    def _exact_costs(self, params: list[dict[str, Any]]) -> np.ndarray | None:
        """Each candidate's exact cost from `price`, or None (no price, or it cannot say)."""
        if self.price is None or not params:
            return None
        try:
            costs = [self.price(self.space.full(p)) for p in params]
        except Exception:  # noqa: BLE001 - a price that rejects a shape: fall back on the model
            return None
        if not all(_finite_positive(c) for c in costs):
            return None
        return np.asarray(costs, dtype=float)

    def _random_picks(
        self, n: int, excluded: set[ConfigKey], rng: np.random.Generator, include_centre: bool
    ) -> list[dict[str, Any]]:
        """Prior samples around the search centre (CARBS' warm-up), centre first."""
        centre = self.space.canonical(self.space.center())
        picks: list[dict[str, Any]] = []
        taken = set(excluded)
        if (
            include_centre
            and n > 0
            and self.encoder.key(centre) not in taken
            and self.space.is_feasible(centre)
        ):
            picks.append(centre)
            taken.add(self.encoder.key(centre))
        if len(picks) < n:
            origins = self.encoder.encode(centre)[None, :]
            _, params = self._candidates(origins, max(4 * n, 32), taken, rng)
            picks += params[: n - len(picks)]
        _require(picks, n)
        return picks

    def _resample_pick(
        self, state: Surrogates, pending: list[dict[str, Any]], successes: list[Observation]
    ) -> dict[str, Any] | None:
        """A re-run of the Pareto member whose place the noise leaves most in doubt, at most once
        per `resample_frequency` successes; None on a deterministic workload.

        The number of resamples done is read off the data (repeated configs, observed or
        pending), not kept as a counter, so it survives a rebuild.
        """
        freq = self.settings.resample_frequency
        if freq <= 0:
            return None
        pending_keys = [self.encoder.key(p) for p in pending]
        counts = {state.keys[g[0]]: len(g) for g in state.groups}
        done = sum(c - 1 for c in counts.values()) + sum(k in counts for k in pending_keys)
        if len(successes) <= (done + 1) * freq:
            return None
        log_losses = np.log(np.maximum(state.losses, 1e-300))
        sd = noise_sd(state.groups, log_losses, self._gp_relative_noise(state))
        in_flight = {g[0]: pending_keys.count(state.keys[g[0]]) for g in state.frontier}
        best = uncertain_member(
            state.groups, state.frontier, state.costs, log_losses, sd, in_flight
        )
        return self.space.canonical(successes[best].params) if best is not None else None

    def _gp_relative_noise(self, state: Surrogates) -> float | None:
        """The trials' noise as a relative (log-loss) sd, read off a GP fitted to log loss
        (unwarped: the loss GP's rank warp turns any misfit into apparent noise), or None where
        the fitted noise sits at the likelihood's floor, as it does on a deterministic workload.
        Fitted only when a resample is due, on at most 64 successes (or 4 per dimension), and only
        from `NOISE_FIT_POINTS_PER_DIM` per search dimension on: with fewer, a GP reads its own
        misfit of a deterministic function as noise (measured: noise 10-30x its floor at 10
        points in 3 dimensions, back at the floor by 20).
        Like the hyperparameters, it is fitted at anchor counts only, on the successes among
        the first `anchor` observations, so it costs one fit per anchor and a rebuilt optimizer
        gets the same value.
        """
        anchor = anchor_count(len(self.observations), self.settings.refit_fraction)
        if anchor in self._noise_memo:
            return self._noise_memo[anchor]
        k = sum(_is_success(o) for o in self.observations[:anchor])
        value = None
        if k >= NOISE_FIT_POINTS_PER_DIM * (self.encoder.search_dims + 1):
            z = state.z[:k]
            cap = max(NOISE_FIT_POINTS_PER_DIM * (self.encoder.search_dims + 1), 64)
            rows = training_subset(z, [], min(cap, self.settings.max_fit_points), 1.0)
            gp = fit_gp(
                self.encoder.to_gp(z[rows]),
                np.log(np.maximum(state.losses[:k][rows], 1e-300)),
                seed=self._fit_seed(anchor),
                maxiter=max(self.settings.fit_maxiter, 75),
            )
            lik = gp.model.likelihood
            noise = float(lik.noise.detach().reshape(-1)[0])
            floor = float(lik.noise_covar.raw_noise_constraint.lower_bound)
            if math.isfinite(noise) and noise >= GP_NOISE_FLOOR_RATIO * floor:
                value = math.sqrt(noise) * gp.y_std
        self._noise_memo = {anchor: value}
        return value

    def _predicted_costs(self, state: Surrogates, params: list[dict[str, Any]]) -> np.ndarray:
        """(n,) cost of each config: exact from `price` where it can say, else the cost GP's."""
        if not params:
            return np.zeros(0)
        exact = self._exact_costs(params)
        if exact is not None:
            return exact
        log_c, _ = state.cost_gp.predict(self.encoder.to_gp(self.encoder.encode_many(params)))
        return np.asarray(state.cost_scale.inverse(log_c), dtype=float)

    def _spending(
        self,
        state: Surrogates,
        pending: list[dict[str, Any]],
        tried_spent: float = 0.0,
        n_tried: int = 0,
    ) -> SpendingPlan:
        """The plan from the trials so far: derived observations (decay branches) add to the
        bill but are not trials, so they neither start nor pace the climb nor count toward
        `max_trials`; stopped trials (`tried`, or observed as bounds) add what they spent and
        count as trials, but a bound is not a success to climb from."""
        s = self.settings
        own = [o for o in self.observations if not o.derived]
        return spending_plan(
            np.asarray([o.cost for o in own if _is_success(o) and not o.bound], dtype=float),
            np.asarray(
                [o.cost if o.spent is None else o.spent for o in self.observations] + [tried_spent],
                dtype=float,
            ),
            float(self._predicted_costs(state, pending).sum()),
            len(own) + n_tried,
            SpendingLimits(
                max_cost_growth=s.max_cost_growth,
                max_suggestion_cost=s.max_suggestion_cost,
                max_total_cost=s.max_total_cost,
                max_trials=s.max_trials,
                climb_fraction=s.climb_fraction,
                climb_every=s.climb_every,
            ),
        )

    def _band_targets(
        self,
        state: Surrogates,
        n: int,
        pending: list[dict[str, Any]],
        rng: np.random.Generator,
        plan: SpendingPlan,
    ) -> list[float | None]:
        """A target cost (or None) per pick: with `cost_fill_share` on, the emptiest stratum of
        the span from the cheapest success to the costliest frontier group while one is
        under-filled (each target counted as a trial for the next); else a random band (see
        `carbs.bayes.costband`)."""
        s = self.settings
        lo_cost, hi_cost = state.frontier_cost_range()
        targets: list[float | None] = []
        counted = (
            np.concatenate([state.costs, self._predicted_costs(state, pending)])
            if s.cost_fill_share > 0
            else state.costs
        )
        lo_fill = min(float(np.min(state.costs)), lo_cost)
        for _ in range(n):
            t = fill_target(counted, lo_fill, hi_cost, s.cost_fill_share, rng)
            if t is None:
                t = band_target(
                    lo_cost, hi_cost, rng, s.cost_band_fraction, s.cost_band_growth, plan.ceiling
                )
            else:
                counted = np.append(counted, t)
            targets.append(t)
        return targets

    def _bayes_picks(
        self,
        state: Surrogates,
        n: int,
        pending: list[dict[str, Any]],
        excluded: set[ConfigKey],
        rng: np.random.Generator,
        plan: SpendingPlan,
    ) -> list[dict[str, Any]]:
        """Greedy batch: pick the acquisition argmax, fantasize its mean, repeat.

        Every pick stays under the plan's ceiling; when the plan has a climb target, the first
        pick is a cost band aimed at it."""
        if n <= 0:
            return []
        z, params = self._candidate_pool(state, n, excluded, rng)
        targets = self._band_targets(state, n, pending, rng, plan)
        if plan.climb_target is not None and n > 0:
            targets[0] = plan.climb_target
        z, params, band_only = self._with_band_candidates(state, z, params, targets, excluded, rng)
        scored = self._score(state, z, params, band_only)
        output_gp = _with_pending(state.output_gp, self.encoder, pending)
        available = np.ones(len(params), dtype=bool)
        picks: list[dict[str, Any]] = []
        for target in targets:
            mean, var = output_gp.predict(scored.x)
            log_mask = np.where(ceiling_mask(scored.cautious_cost, plan.ceiling), 0.0, -np.inf)
            pick = _PickRound(mean, var, available, log_mask)
            value = self._band_value(scored, pick, target)
            if value is None or not np.isfinite(value).any():
                target = None
                value = self._ordinary_value(state, scored, pick, plan, rng)
            i = int(np.argmax(value))
            available[i] = False
            picks.append(params[i])
            loss = state.warp.to_loss(mean[i])
            info = _pick_info(loss, scored.predicted_cost[i], value[i], target, plan.ceiling)
            self.last_info.append(info)
            plan = plan.after(float(scored.predicted_cost[i]))  # later picks share what is left
            output_gp = output_gp.with_fantasies(scored.x[i : i + 1], mean[i : i + 1])
        return picks

    def _candidate_count(self) -> int:
        s = self.settings
        return min(s.max_candidates, s.num_candidates_per_dim * self.encoder.search_dims)

    def _candidate_pool(
        self, state: Surrogates, n: int, excluded: set[ConfigKey], rng: np.random.Generator
    ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """The ordinary candidates around the frontier, topped up from the prior when the
        region around the frontier holds fewer than `n` new feasible configs."""
        z, params = self._candidates(state.origins, max(self._candidate_count(), n), excluded, rng)
        if len(params) < n:
            params += self._random_picks(
                n - len(params),
                excluded | {self.encoder.key(p) for p in params},
                rng,
                include_centre=False,
            )
            z = self.encoder.encode_many(params)
        return z, params

    def _with_band_candidates(
        self,
        state: Surrogates,
        z: np.ndarray,
        params: list[dict[str, Any]],
        targets: list[float | None],
        excluded: set[ConfigKey],
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, list[dict[str, Any]], np.ndarray]:
        """The pool with candidates aimed at each band target appended, and a (m,) mask of
        those band-only ones (an ordinary pick never takes them)."""
        band_only = np.zeros(len(params), dtype=bool)
        origin_costs = frontier_origin_costs(state.costs, state.frontier)
        for t in targets:
            if t is None:
                continue
            taken = excluded | {self.encoder.key(p) for p in params}
            aim = CostAim(origin_costs, t)
            count = max(self._candidate_count() // 4, 16)
            zb, pb = self._candidates(state.origins, count, taken, rng, aim)
            if pb:
                params = params + pb
                z = np.vstack([z, zb])
                band_only = np.concatenate([band_only, np.ones(len(pb), dtype=bool)])
        return z, params, band_only

    def _score(
        self,
        state: Surrogates,
        z: np.ndarray,
        params: list[dict[str, Any]],
        band_only: np.ndarray,
    ) -> _Scored:
        """What the models say of each candidate that does not change within a batch."""
        x = self.encoder.to_gp(z)
        log_c, var_c = state.cost_gp.predict(x)
        predicted_cost = state.cost_scale.inverse(log_c)
        # the ceiling is held against the cost model's figure one sd up: its error put trials
        # 30-40 % past the cap where no exact price was given (measured on the family benchmark)
        cautious_cost = state.cost_scale.inverse(log_c + np.sqrt(np.maximum(var_c, 0.0)))
        exact = self._exact_costs(params)
        if exact is not None:
            predicted_cost = cautious_cost = exact
            log_c = state.cost_scale.forward(exact)
        if state.success_gp is not None:
            log_succ = log_success_probability(*state.success_gp.predict(x))
        else:
            log_succ = 0.0
        return _Scored(
            x=x,
            band_only=band_only,
            predicted_cost=predicted_cost,
            cautious_cost=cautious_cost,
            pareto_at_cost=state.pareto_value(log_c),
            log_prior=self.encoder.log_prior(z, state.origins),
            log_succ=log_succ,
        )

    def _band_value(
        self, scored: _Scored, pick: _PickRound, target: float | None
    ) -> np.ndarray | None:
        """(m,) acquisition of a band pick: EI against the frontier at the candidate's own
        cost, prior widened, -inf outside the band; None when no free candidate is in it."""
        if target is None:
            return None
        band = in_band(scored.predicted_cost, target) & pick.available
        if not band.any():
            return None
        log_ei = log_expected_improvement(
            pick.mean, pick.var, scored.pareto_at_cost, self.settings.exploration_bias
        )
        value = acquisition_value(
            log_ei, scored.log_prior / BAND_PRIOR_WIDENING**2, scored.log_succ, pick.log_mask
        )
        return np.where(band, value, -np.inf)

    def _ordinary_value(
        self,
        state: Surrogates,
        scored: _Scored,
        pick: _PickRound,
        plan: SpendingPlan,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """(m,) acquisition of an ordinary pick: EI against the Pareto value clamped at a random
        cost, over the free candidates not sampled for a band; the prior where EI is nowhere
        finite (under the ceiling if any candidate is)."""
        s = self.settings
        lo_cost, hi_cost = state.frontier_cost_range()
        floor = None
        if s.clamp_pareto_value:
            cap = plan.ceiling if plan.ceiling and plan.ceiling > 0 else None
            threshold = random_threshold_cost(lo_cost, hi_cost, rng, cap)
            floor = float(state.pareto_value(state.cost_scale.forward(np.array([threshold])))[0])
        best = clamped_pareto_value(scored.pareto_at_cost, floor)
        log_ei = log_expected_improvement(pick.mean, pick.var, best, s.exploration_bias)
        value = acquisition_value(log_ei, scored.log_prior, scored.log_succ, pick.log_mask)
        value = np.where(pick.available & ~scored.band_only, value, -np.inf)
        if not np.isfinite(value).any():  # no EI anywhere: the prior, under the ceiling
            value = np.where(pick.available & np.isfinite(pick.log_mask), scored.log_prior, -np.inf)
        if not np.isfinite(value).any():
            value = np.where(pick.available, scored.log_prior, -np.inf)
        return value


@dataclass(frozen=True)
class _Scored:
    """A batch's m candidates as the models see them; fixed while the batch is picked.

    x: (m, gp_dim) GP inputs. band_only: (m,) sampled for a cost band (no ordinary pick takes
    them). predicted_cost, cautious_cost: (m,) the cost model's figure and that one sd up
    (both exact where `price` says). pareto_at_cost: (m,) the frontier's surrogate value at
    each candidate's cost. log_prior: (m,). log_succ: (m,) or 0.0 without failures.
    """

    x: torch.Tensor
    band_only: np.ndarray
    predicted_cost: np.ndarray
    cautious_cost: np.ndarray
    pareto_at_cost: np.ndarray
    log_prior: np.ndarray
    log_succ: np.ndarray | float


@dataclass(frozen=True)
class _PickRound:
    """One greedy pick's view: (m,) mean and variance of the output model with the batch's
    earlier picks fantasized, which candidates are still free, and the ceiling's log mask."""

    mean: np.ndarray
    var: np.ndarray
    available: np.ndarray
    log_mask: np.ndarray


def _with_pending(
    output_gp: FittedGP, encoder: SpaceEncoder, pending: list[dict[str, Any]]
) -> FittedGP:
    """The output model with each in-flight trial fantasized at its predicted mean."""
    if not pending:
        return output_gp
    xp = encoder.to_gp(encoder.encode_many(pending))
    return output_gp.with_fantasies(xp, output_gp.predict(xp)[0])


def _pick_info(
    predicted_loss: float,
    predicted_cost: float,
    log_acquisition: float,
    target: float | None,
    ceiling: float | None,
) -> dict[str, float]:
    """What `last_info` records of a pick (the band and ceiling only where there is one)."""
    info = {
        "predicted_loss": float(predicted_loss),
        "predicted_cost": float(predicted_cost),
        "log_acquisition": float(log_acquisition),
    }
    if target is not None:
        info["cost_band"] = float(target)
    if ceiling is not None:
        info["cost_ceiling"] = float(ceiling)
    return info


def _finite_positive(v: float | None) -> bool:
    return v is not None and math.isfinite(v) and v > 0


# Memo of anchor hyperparameters by `_memo_key`. Why: a sweep driver rebuilds the optimizer from
# stored trials before every suggest; the anchor fit is a pure function of its key, so reusing
# it changes no result and turns each rebuild's full fit into a dictionary lookup.
_ANCHOR_MEMO: dict[str, dict[str, Any]] = {}
_ANCHOR_MEMO_SIZE = 64


def _remember(key: str | None, hyper: dict[str, Any]) -> None:
    if key is None:
        return
    _ANCHOR_MEMO[key] = hyper
    while len(_ANCHOR_MEMO) > _ANCHOR_MEMO_SIZE:
        _ANCHOR_MEMO.pop(next(iter(_ANCHOR_MEMO)))


def anchor_count(n: int, fraction: float) -> int:
    """The largest anchor <= n, anchors being 1, 2, ..., then steps of ~`fraction` of the count.

    fraction 0 refits at every observation.
    """
    if fraction <= 0:
        return n
    a = 1
    while True:
        nxt = a + max(1, int(a * fraction))
        if nxt > n:
            return min(a, n)
        a = nxt


def _is_success(o: Observation) -> bool:
    return not o.failed and o.loss is not None and math.isfinite(o.loss)


def _require(picks: list[Any], n: int) -> None:
    if len(picks) < n:
        raise RuntimeError(
            f"could not find {n} distinct feasible suggestions (found {len(picks)}); the space "
            "may be too small for the trials already run, or its constraints unsatisfiable"
        )
