"""An LLM Foundry training YAML (MPT model class with DBRX-style MoE `ffn_config`)."""

from __future__ import annotations

from typing import Any

import yaml

from carbs.scaling.pick import LargeRunPick
from experiments.export.arch import full_arch, full_train


def render_llm_foundry(pick: LargeRunPick, sweep_name: str) -> str:
    a, t = full_arch(pick.params), full_train(pick.params)
    lo, hi = pick.predicted_loss_ci
    doc: dict[str, Any] = {
        "variables": {
            "run_name": f"{sweep_name}-large",
            "data_local": "./my-data",
            "data_remote": None,
        },
        "run_name": "${variables.run_name}",
        "max_seq_len": a["seq_len"],
        "model": {
            "name": "mpt_causal_lm",
            "init_device": "meta",
            "d_model": a["d_model"],
            "n_heads": a["n_heads"],
            "n_layers": a["n_layers"],
            "max_seq_len": a["seq_len"],
            "vocab_size": a["vocab_size"],
            "no_bias": True,
            "norm_type": "low_precision_rmsnorm"
            if a["norm"] == "rmsnorm"
            else "low_precision_layernorm",
            "tie_word_embeddings": bool(a["tie_embeddings"]),
            "attn_config": {
                "attn_impl": "flash",
                "attn_type": "grouped_query_attention",
                "kv_n_heads": a["n_kv_heads"],
                "clip_qkv": float(a["clip_qkv"]) if a["clip_qkv"] else None,
                "rope": True,
                "rope_theta": float(a["rope_theta"]),
            },
            "ffn_config": {
                "ffn_type": "mb_dmoe",
                "ffn_hidden_size": a["expert_hidden"],
                "ffn_act_fn": {"name": "silu"},
                "mlp_type": "glu",
                "mlp_impl": "grouped",
                "moe_num_experts": a["n_experts"],
                "moe_top_k": a["top_k"],
                "moe_loss_weight": float(a["lb_loss_coef"]),
                "moe_normalize_expert_weights": 1,
                "moe_jitter_eps": 0.0,
                "memory_optimized_mlp": False,
            },
        },
        "tokenizer": {"name": "gpt2", "kwargs": {"model_max_length": a["seq_len"]}},
        "optimizer": {
            "name": "decoupled_adamw",
            "lr": float(t["learning_rate"]),
            "betas": [float(t["beta1"]), float(t["beta2"])],
            "eps": 1.0e-8,
            "weight_decay": float(t["weight_decay"]),
        },
        "scheduler": {
            "name": "cosine_with_warmup"
            if t["schedule"] == "cosine"
            else "linear_decay_with_warmup",
            "t_warmup": f"{t['warmup_steps']}ba",
            "alpha_f": float(t.get("min_lr_frac", 0.1)),
        },
        "algorithms": {
            "gradient_clipping": {
                "clipping_type": "norm",
                "clipping_threshold": float(t["grad_clip"]),
            }
        },
        "max_duration": f"{t['steps']}ba",
        "global_train_batch_size": t["batch_size"],
        "device_train_microbatch_size": "auto",
        "precision": "amp_bf16",
        "seed": 17,
        "train_loader": {
            "name": "text",
            "dataset": {
                "local": "${variables.data_local}",
                "split": "train",
                "shuffle": True,
                "max_seq_len": a["seq_len"],
            },
            "drop_last": True,
            "num_workers": 8,
        },
        "eval_interval": "1000ba",
        "save_interval": "1000ba",
    }
    head = (
        f"# LLM Foundry training config for the large run of sweep {sweep_name!r}\n"
        f"# {t['tokens']:.4g} tokens ({t['steps']} steps of {t['batch_size']} x "
        f"{a['seq_len']}), {pick.target_flops:.4g} training FLOPs\n"
        f"# predicted final loss {pick.predicted_loss:.4f} (90% CI {lo:.4f}-{hi:.4f})\n"
    )
    return head + yaml.safe_dump(doc, sort_keys=False)
