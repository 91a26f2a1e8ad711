"""The keys LLM Foundry's MPT model reads, so the export can refuse any other.

Why: LLM Foundry keeps only the `ffn_config` keys that MegaBlocks' `Arguments` takes and drops
the rest without a word, and `MPTConfig` stores unknown model keys as inert attributes; a typo
would train a different model silently. Transcribed from llm-foundry 0.22
(`MPTConfig.__init__`, `config_defaults.attn_config_defaults`, `config_moe_args`) and
megablocks 0.10 (`layers.arguments.Arguments`); `scripts/llmfoundry_check.py` checks the first
three against the installed LLM Foundry in CI.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MODEL_KEYS = frozenset(
    {
        "name", "init_device", "d_model", "n_heads", "n_layers", "head_dim", "expansion_ratio",
        "max_seq_len", "vocab_size", "resid_pdrop", "emb_pdrop", "learned_pos_emb",
        "attn_config", "ffn_config", "init_config", "fc_type", "no_bias", "embedding_fraction",
        "norm_type", "norm_eps", "logit_scale", "use_cache", "tie_word_embeddings",
        "use_pad_tok_in_ffn", "block_overrides", "final_logit_softcapping", "attention_bias",
    }
)  # fmt: skip
ATTN_KEYS = frozenset(
    {
        "attn_type", "attn_pdrop", "attn_impl", "qk_ln", "qk_gn", "fused_qkv", "clip_qkv",
        "softmax_scale", "attn_uses_sequence_id", "sliding_window_size",
        "attn_logit_softcapping", "alibi", "alibi_bias_max", "rope", "nope", "rope_theta",
        "rope_impl", "rope_dail_config", "rope_hf_config", "attn_temperature_tuning", "kv_dim",
        "kv_n_heads",
    }
)  # fmt: skip
# read by LLM Foundry itself (config_megablocks_moe_args) before MegaBlocks sees the rest
FFN_FOUNDRY_KEYS = frozenset(
    {"ffn_type", "fc_type", "ffn_act_fn", "moe_world_size", "device_mesh", "lbl_process_group"}
)
MEGABLOCKS_ARGUMENTS = frozenset(
    {
        "hidden_size", "ffn_hidden_size", "num_layers", "bias", "return_bias", "activation_fn",
        "moe_num_experts", "moe_top_k", "moe_capacity_factor", "moe_normalize_expert_weights",
        "moe_loss_weight", "moe_jitter_eps", "moe_lbl_in_fp32", "moe_expert_model_parallelism",
        "expert_parallel_group", "pipeline_model_parallel_size",
        "num_layers_per_virtual_pipeline_stage", "memory_optimized_mlp", "mlp_type", "mlp_impl",
        "fp16", "bf16", "device", "init_method", "output_layer_init_method",
        "uniform_expert_assignment", "shared_expert", "fc_cls", "fc_kwargs", "remat_act_fn",
        "shared_expert_hidden_size", "shared_expert_weighted_sum", "moe_zloss_weight",
        "moe_zloss_in_fp32",
    }
)  # fmt: skip
FFN_KEYS = FFN_FOUNDRY_KEYS | MEGABLOCKS_ARGUMENTS


def check_model_keys(model: Mapping[str, Any]) -> None:
    """Raise ValueError naming any key of the model section LLM Foundry would not read."""
    sections = (
        ("model", model, MODEL_KEYS),
        ("model.attn_config", model.get("attn_config", {}), ATTN_KEYS),
        ("model.ffn_config", model.get("ffn_config", {}), FFN_KEYS),
    )
    for where, section, known in sections:
        unknown = sorted(set(section) - known)
        if unknown:
            raise ValueError(
                f"{where}: LLM Foundry would ignore {unknown}; known keys are {sorted(known)}"
            )
