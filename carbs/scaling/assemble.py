"""Build the large run's shape and tokens: laws at the target, one consistent valid config.

Why: the size law (or Chinchilla's N_opt) fixes how big the model is, the shape laws are matched
as closely as the valid grid allows, and tokens are solved from the budget with the cost
function, so the config costs exactly the target. Parameters that scale cost are not held to
the search range: the large run is meant to be bigger than any small one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from carbs.scaling.consistency import consistent_shape, in_range, solve_tokens, valid_value
from carbs.scaling.covariates import EXPERT_NAMES, TOP_K_NAMES
from carbs.scaling.hplaws import HPLaw, inverse, shrunk_law_z
from carbs.scaling.size import flops_size_fn
from carbs.scaling.types import TrialPoint
from carbs.space import SearchSpace

HELD_SD = 0.05
# widths and depth grow with model size in every compute-optimal family; expert counts and
# top_k need not, so only these follow their size law when their compute trend is unclear
GROWING_DIMS = (
    "d_model",
    "n_layers",
    "expert_hidden",
    "ffn_hidden",
    "d_ff",
    "head_dim",
)  # log sd that keeps a held shape parameter where it is in the consistency solve
# Growth of widths and depth with the model's size N (slope of log value vs log N), combined
# with the runs' own by precision: both grow as N^(1/3) at a constant aspect ratio. Why: an
# optimizer rarely explores depth (runs at 4-6 layers throughout), and the flat trend it leaves
# made width carry all growth (d_model / n_layers 180-320 vs an optimum of 50-90, up to 3.5 % of
# loss on the scaling world).
SIZE_SLOPE_PRIOR = {"head_dim": (0.0, 0.1)}
SIZE_SLOPE_PRIOR_DEFAULT = (1.0 / 3.0, 0.1)
SHAPE_NAMES = ("d_model", "n_layers", "n_heads", "n_kv_heads", "n_experts", "top_k",
               "expert_hidden", "head_dim")  # fmt: skip


def base_config(
    ok: Sequence[TrialPoint],
    space: SearchSpace,
    target: float,
    hp: dict[str, HPLaw],
    skip: set[str],
) -> dict[str, Any]:
    """Fixed values, each lawed parameter at its law's value, the rest from the costliest run."""
    cfg: dict[str, Any] = dict(space.fixed)
    ref = max(ok, key=lambda p: (p.cost, -float(p.loss or 0.0)))
    for prm in space.params:
        if prm.name not in hp:
            cfg[prm.name] = ref.params.get(prm.name)
    for k, v in ref.params.items():
        cfg.setdefault(k, v)
    for prm in space.params:
        if prm.name in hp and prm.name not in skip:
            cfg[prm.name] = valid_value(prm, float(hp[prm.name].value_at(target)[0]))
    return cfg


def assemble_shape(
    cfg: dict[str, Any],
    ok: Sequence[TrialPoint],
    space: SearchSpace,
    target: float,
    hp: dict[str, HPLaw],
    tok_key: str | None,
    cost_fn: Callable[[dict[str, Any]], float] | None,
    n_target: float | None,
    warnings: list[str],
    hp_size: dict[str, HPLaw] | None = None,
    size_fn: Callable[[dict[str, Any]], float] | None = None,
) -> dict[str, Any]:
    """Solve the shape for size `n_target` and tokens for the budget (needs cost_fn and tokens).

    `size_fn` measures a shape's size as the runs' N was measured (default FLOPs per token / 6).

    `hp_size` holds shape laws vs the runs' size N instead of compute: read at the picked size
    they stay consistent with it when the size solve (Chinchilla N_opt) and the compute laws
    disagree, so the shrink or growth is shared by width and depth as the runs shared it.
    """
    shape = [p.name for p in space.params if p.name in hp and p.name != tok_key
             and (p.scales_cost or p.name in SHAPE_NAMES)]  # fmt: skip
    if cost_fn is None or tok_key is None or "n_params" not in hp:
        if cost_fn is None:
            warnings.append(
                "no cost_fn: each parameter follows its own law vs compute and the "
                "budget is not enforced by a consistency solve"
            )
        fix_heads(cfg, ok)
        return cfg
    measure = size_fn or flops_size_fn(cost_fn, tok_key)
    if n_target is None:
        n_target = float(hp["n_params"].value_at(target)[0])
    targets = {}
    for s in shape:
        law = hp[s]  # whether a trend exists is judged vs compute, which no shape sets by itself
        boot_sd = float(np.std(law.z_at(target)[1:])) if len(law.coef) > 2 else 0.3
        val = float(law.value_at(target)[0])
        sd = max(law.resid_sd, boot_sd, 0.1)
        slope_ci = np.quantile(law.coef[1:, 1], [0.05, 0.95]) if len(law.coef) > 2 else (0, 0)
        grows = hp_size is not None and s in hp_size and s in GROWING_DIMS
        if slope_ci[0] <= 0 <= slope_ci[1] and not grows:
            # no trend the runs can show: hold it where the runs were, not extrapolated
            max_c = max(p.cost for p in ok)
            val = float(space.param(s).clamp(float(law.value_at(max_c)[0])))
            sd = HELD_SD
        elif slope_ci[1] < 0:
            # a shrinking shape parameter is held within what the runs tried
            seen = [float(p.params[s]) for p in ok if s in p.params]
            val = float(min(max(val, min(seen)), max(seen)))
            sd = HELD_SD
        elif hp_size is not None and s in hp_size:
            # a growing one is read off its law vs size at the picked size; so is a width or
            # depth without a clear trend vs compute (no evidence is not evidence it stays)
            law = hp_size[s]
            z = law.z_at(n_target)
            if s in GROWING_DIMS:
                z, _ = shrunk_law_z(
                    law, n_target, SIZE_SLOPE_PRIOR.get(s, SIZE_SLOPE_PRIOR_DEFAULT)
                )
            boot_sd = float(np.std(z[1:])) if len(z) > 2 else 0.3
            val = float(inverse(law.param, z[:1])[0])
            sd = max(law.resid_sd, boot_sd, 0.1)
        targets[s] = (val, sd)
    # widths and depth read off their size laws share one sd: their runs' scatter says how
    # noisy the runs were, not which of them should absorb a size the laws do not reach (a
    # 2-layer sweep's tight width law put 26 layers under d_model 160 on a real CPU sweep)
    grown = [s for s in targets if s in GROWING_DIMS and hp_size is not None and s in hp_size
             and targets[s][1] != HELD_SD]  # fmt: skip
    if len(grown) > 1:
        common = max(targets[s][1] for s in grown)
        targets.update({s: (targets[s][0], common) for s in grown})
    # routing (experts, top_k) stays in the searched range: a large run does not need more of
    # it to be bigger (DBRX: 16 experts, top-4 at 132B), and past the range there is no evidence
    # (seen: a top-5 pick from a top_k <= 4 sweep on the scaling world, regret 8 %)
    keep = frozenset(s for s in targets if s in EXPERT_NAMES or s in TOP_K_NAMES)
    for s in keep:
        targets[s] = (float(space.param(s).clamp(targets[s][0])), targets[s][1])
    cfg, _ = consistent_shape(space, cfg, targets, n_target, 0.03, measure, in_range_only=keep)
    fix_heads(cfg, ok)  # before pricing tokens: heads change the attention FLOPs
    solve_budget(cfg, space, cost_fn, target, tok_key)
    spent = cost_fn(cfg)
    if abs(spent / target - 1) > 0.02:
        warnings.append(
            f"the picked config costs {spent:.3g} FLOPs, not the target {target:.3g}: "
            "a hard limit of the shape blocks the size"
        )
    return cfg


def solve_budget(
    cfg: dict[str, Any],
    space: SearchSpace,
    cost_fn: Callable[[dict[str, Any]], float],
    target: float,
    tok_key: str,
) -> None:
    """Set tokens so the config costs the target (in place)."""
    p_tok = space.param(tok_key) if tok_key in space.names else None
    cfg[tok_key] = solve_tokens(cfg, cost_fn, target, p_tok, tok_key)


def range_warnings(cfg: dict[str, Any], space: SearchSpace) -> list[str]:
    """Name every picked value outside its search range (expected for what scales cost)."""
    out = []
    for p in space.params:
        if p.name in cfg and not in_range(p, cfg[p.name]):
            why = (
                "it scales cost, so the large run extrapolates past the range"
                if p.scales_cost
                else "its law at the target says so; check this setting before launching"
            )
            out.append(
                f"{p.name}={cfg[p.name]:.4g} lies outside the search range "
                f"[{_g(p.min)}, {_g(p.max)}]: {why}"
            )
    return out


def _g(v: float | None) -> str:
    return "-" if v is None else f"{v:.4g}"


def fix_heads(cfg: dict[str, Any], ok: Sequence[TrialPoint]) -> None:
    """Keep the trials' head size when n_heads is not searched, and heads dividing d_model."""
    if "d_model" not in cfg or "n_heads" not in cfg:
        return
    d = int(cfg["d_model"])
    if cfg.get("head_dim"):
        return
    hd = [int(p.params["d_model"]) // int(p.params["n_heads"]) for p in ok
          if p.params.get("n_heads")]  # fmt: skip
    head = int(np.median(hd)) if hd else 64
    want = max(1, round(d / head))
    kv = int(cfg.get("n_kv_heads") or 1)
    cands = [h for h in range(1, d + 1) if d % h == 0 and (d // h) % 2 == 0 and h % kv == 0]
    if not cands:
        cands = [h for h in range(1, d + 1) if d % h == 0]
    cfg["n_heads"] = min(cands, key=lambda h: (abs(math.log(h / want)), h))
