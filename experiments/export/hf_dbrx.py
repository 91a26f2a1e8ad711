"""A Hugging Face DBRX model directory: `config.json` that `from_pretrained` loads.

Why a directory: `AutoConfig.from_pretrained(dir)` (and, with weights beside it,
`AutoModelForCausalLM.from_pretrained(dir)`) looks for exactly `config.json`. The same
`dbrx_config` serves the pick's export and the weights checkpoint (`hf_weights`), so both describe
one model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from carbs.scaling.pick import LargeRunPick
from experiments.export.arch import full_arch

# transformers 5 clamps with `clamp(min=-clip_qkv, max=clip_qkv)` whether or not clipping is on,
# and `clip_qkv: null` fails there; a bound no activation reaches is "no clipping" in every
# version (finite, so bf16 keeps it and the JSON stays standard).
NO_CLIP_QKV = 1.0e30


def dbrx_config(a: Mapping[str, Any]) -> dict[str, Any]:
    """DbrxConfig fields for a full MoEConfig field dict `a` (see `arch.full_arch`).

    Raises ValueError for what DBRX cannot express: a head_dim other than d_model / n_heads,
    RMSNorm (DBRX's blocks use bias-free LayerNorm), tied embeddings (DbrxConfig refuses them).
    """
    if a["head_dim"] * a["n_heads"] != a["d_model"]:
        raise ValueError(
            f"DbrxConfig needs head_dim * n_heads == d_model; got head_dim="
            f"{a['head_dim']}, n_heads={a['n_heads']}, d_model={a['d_model']}"
        )
    if a["norm"] != "layernorm":
        raise ValueError(
            f"norm={a['norm']!r}: DBRX uses bias-free LayerNorm; export this pick as "
            "'llm-foundry' or 'yaml', or fix norm to 'layernorm' in the sweep"
        )
    if a["tie_embeddings"]:
        raise ValueError(
            "tie_embeddings=True: DbrxConfig refuses tied embeddings; export this pick as "
            "'llm-foundry' or 'yaml', or fix tie_embeddings to false in the sweep"
        )
    clip = float(a["clip_qkv"]) if a["clip_qkv"] else NO_CLIP_QKV
    return {
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
            "clip_qkv": clip,
            "kv_n_heads": a["n_kv_heads"],
            "rope_theta": float(a["rope_theta"]),  # transformers 4 reads it here
        },
        "ffn_config": {
            "ffn_act_fn": {"name": "silu"},
            "ffn_hidden_size": a["expert_hidden"],
            "moe_num_experts": a["n_experts"],
            "moe_top_k": a["top_k"],
            "moe_jitter_eps": 0.0,
            "moe_loss_weight": float(a["lb_loss_coef"]),
            # p=1 norm of the top-k softmax weights: our router's renormalisation to sum one
            "moe_normalize_expert_weights": 1.0,
        },
        # transformers 5 reads these
        "rope_parameters": {"rope_type": "default", "rope_theta": float(a["rope_theta"])},
        "rope_theta": float(a["rope_theta"]),
        "initializer_range": 0.02,
        "tie_word_embeddings": False,
        "use_cache": True,
    }


def render_hf_dbrx(pick: LargeRunPick, sweep_name: str) -> str:
    """The pick's `config.json`, with what we predict for it under a `carbs` key."""
    doc = dbrx_config(full_arch(pick.params))
    doc["carbs"] = {
        "sweep": sweep_name,
        "target_flops": pick.target_flops,
        "predicted_loss": pick.predicted_loss,
        "predicted_loss_ci90": list(pick.predicted_loss_ci),
    }
    return json.dumps(doc, indent=2) + "\n"
