"""A Hugging Face `DbrxConfig` config.json (loads with transformers' DbrxConfig)."""

from __future__ import annotations

import json
from typing import Any

from carbs.scaling.pick import LargeRunPick
from experiments.export.arch import full_arch


def render_hf_dbrx(pick: LargeRunPick, sweep_name: str) -> str:
    a = full_arch(pick.params)
    if a["head_dim"] * a["n_heads"] != a["d_model"]:
        raise ValueError(
            f"DbrxConfig needs head_dim * n_heads == d_model; got head_dim="
            f"{a['head_dim']}, n_heads={a['n_heads']}, d_model={a['d_model']}"
        )
    doc: dict[str, Any] = {
        "architectures": ["DbrxForCausalLM"],
        "model_type": "dbrx",
        "d_model": a["d_model"],
        "n_heads": a["n_heads"],
        "n_layers": a["n_layers"],
        "max_seq_len": a["seq_len"],
        "vocab_size": a["vocab_size"],
        "resid_pdrop": 0.0,
        "emb_pdrop": 0.0,
        "attn_config": {
            "attn_pdrop": 0.0,
            "clip_qkv": float(a["clip_qkv"]) if a["clip_qkv"] else None,
            "kv_n_heads": a["n_kv_heads"],
            "rope_theta": float(a["rope_theta"]),  # the modeling code reads it here
        },
        "ffn_config": {
            "ffn_act_fn": {"name": "silu"},
            "ffn_hidden_size": a["expert_hidden"],
            "moe_num_experts": a["n_experts"],
            "moe_top_k": a["top_k"],
            "moe_jitter_eps": 0.0,
            "moe_loss_weight": float(a["lb_loss_coef"]),
            "moe_normalize_expert_weights": 1.0,
        },
        "rope_parameters": {"rope_type": "default", "rope_theta": float(a["rope_theta"])},
        "rope_theta": float(a["rope_theta"]),
        "initializer_range": 0.02,
        "tie_word_embeddings": bool(a["tie_embeddings"]),
        "use_cache": True,
        "carbs": {
            "sweep": sweep_name,
            "target_flops": pick.target_flops,
            "predicted_loss": pick.predicted_loss,
            "predicted_loss_ci90": list(pick.predicted_loss_ci),
        },
    }
    return json.dumps(doc, indent=2) + "\n"
