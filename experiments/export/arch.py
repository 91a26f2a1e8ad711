"""The architecture and recipe of a pick, with the model family's defaults filled in.

Why: a sweep may search only a few fields; every export must still state the full model, and
all three must agree. Defaults come from `models.config` so there is one source of truth.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


def config_defaults(cls_name: str) -> dict[str, Any]:
    from models import config

    cls = getattr(config, cls_name)
    return {f.name: f.default for f in dataclasses.fields(cls)}


def full_arch(params: Mapping[str, Any]) -> dict[str, Any]:
    """MoEConfig fields (ints rounded) for `params`, head_dim resolved."""
    out = config_defaults("MoEConfig")
    for k in out:
        if k in params and params[k] is not None:
            out[k] = params[k]
    for k in (
        "d_model",
        "n_layers",
        "n_heads",
        "n_kv_heads",
        "head_dim",
        "n_experts",
        "top_k",
        "expert_hidden",
        "vocab_size",
        "seq_len",
    ):
        out[k] = int(round(float(out[k])))
    if not out["head_dim"]:
        if out["d_model"] % out["n_heads"]:
            raise ValueError(
                f"n_heads={out['n_heads']} does not divide d_model={out['d_model']}; "
                "fix the pick before exporting"
            )
        out["head_dim"] = out["d_model"] // out["n_heads"]
    return out


def full_train(params: Mapping[str, Any]) -> dict[str, Any]:
    """TrainConfig fields for `params`, plus the whole number of optimizer steps."""
    out = config_defaults("TrainConfig")
    for k in out:
        if k in params and params[k] is not None:
            out[k] = params[k]
    seq = int(round(float(params.get("seq_len", config_defaults("MoEConfig")["seq_len"]))))
    out["batch_size"] = int(round(float(out["batch_size"])))
    out["tokens"] = int(round(float(out["tokens"])))
    out["steps"] = max(1, round(out["tokens"] / (out["batch_size"] * seq)))
    # as models.schedule.lr_multiplier counts them
    out["warmup_steps"] = int(round(float(out["warmup_frac"]) * out["steps"]))
    return out
