"""Which parameter plays which part in a scaling model: width, depth, experts, tokens, ...

Why roles and not names: the model needs to know that `hidden_size` is a width (its aspect
ratio with depth may have an optimum), that `expert_ratio` counts experts per token, that
`batch_tokens` is a batch size; a sweep names them as its framework does. A spec may say so
(`scaling.roles`); otherwise today's common names are recognised, and a role nothing matches
is simply absent. Settings (what the model fits an optimum for) are every numeric searched
parameter that neither scales cost nor is the token count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from carbs.space import SearchSpace

ROLE_DEFAULTS: dict[str, tuple[str, ...]] = {
    "width": ("d_model", "hidden_size", "n_embd", "dim", "model_dim"),
    "depth": ("n_layers", "num_layers", "n_layer", "num_hidden_layers", "depth"),
    "experts": ("n_experts", "num_experts", "moe_num_experts", "num_local_experts"),
    "experts_per_token": ("expert_ratio", "experts_per_token_ratio"),
    "top_k": ("top_k", "moe_top_k", "num_experts_per_tok", "experts_per_token"),
    "tokens": ("tokens", "train_tokens", "n_tokens", "num_tokens"),
    "lr": ("learning_rate", "lr"),
    "batch": ("batch_size", "batch_tokens", "global_batch_size", "global_bs"),
    "wd": ("weight_decay", "wd"),
}
ROLE_DOC = {
    "width": "model width (the aspect ratio is width / depth)",
    "depth": "number of layers",
    "experts": "number of experts (with top_k: experts per token = experts / top_k)",
    "experts_per_token": "experts per token directly (experts / top_k)",
    "top_k": "experts each token is routed to",
    "tokens": "training tokens D",
    "lr": "learning rate (its penalty may be lopsided; the divergence boundary is fitted on it)",
    "batch": "batch size",
    "wd": "AdamW weight decay (its optimum follows batch / (lr x tokens) a priori)",
}


@dataclass(frozen=True)
class Roles:
    """Role -> parameter name, for the roles present; `settings` in fitting order."""

    names: Mapping[str, str] = field(default_factory=dict)
    settings: tuple[str, ...] = ()

    def get(self, role: str) -> str | None:
        return self.names.get(role)

    @property
    def tokens(self) -> str | None:
        return self.names.get("tokens")

    @property
    def lr(self) -> str | None:
        return self.names.get("lr")

    def role_of(self, name: str) -> str | None:
        return next((r for r, n in self.names.items() if n == name), None)


def infer_roles(
    space: SearchSpace | None,
    declared: Mapping[str, str] | None = None,
    available: set[str] | None = None,
) -> Roles:
    """Roles from a spec's declaration, else from the recognised names. `available` lists the
    parameters the runs carry (the space's plus its fixed values, or a table's columns).

    Raises ValueError for a declared role that is unknown or names a missing parameter."""
    known = set(available or ()) | (set(space.names) | set(space.fixed) if space else set())
    names: dict[str, str] = {}
    for role, name in (declared or {}).items():
        if role not in ROLE_DEFAULTS:
            raise ValueError(
                f"scaling.roles: unknown role {role!r}; roles are {sorted(ROLE_DEFAULTS)}"
            )
        if name not in known:
            raise ValueError(f"scaling.roles.{role}: no parameter named {name!r}")
        names[role] = name
    taken = set(names.values())
    for role, candidates in ROLE_DEFAULTS.items():
        if role in names:
            continue
        match = next((c for c in candidates if c in known and c not in taken), None)
        if match is not None:
            names[role] = match
            taken.add(match)
    if "experts" in names and "experts_per_token" in names:
        names.pop("experts_per_token")
    return Roles(names, _settings(space, names))


def _settings(space: SearchSpace | None, names: Mapping[str, str]) -> tuple[str, ...]:
    """Numeric searched parameters that do not scale cost and play no part in the shape (width,
    depth, routing): what has an optimum to fit, the learning rate first (other settings'
    optima may follow it), the batch next."""
    if space is None:
        return ()
    shape = {names.get(r) for r in ("width", "depth", "experts", "experts_per_token", "top_k")}
    out = [
        p.name
        for p in space.params
        if p.kind != "categorical"
        and not p.scales_cost
        and p.name != names.get("tokens")
        and p.name not in shape
    ]
    first = [n for n in (names.get("lr"), names.get("batch")) if n in out]
    return tuple(first + [n for n in out if n not in first])
