"""An LLM Foundry training YAML: MPT with DBRX-style MegaBlocks experts, the swept recipe.

Why each mapping is spelled out: LLM Foundry's defaults differ from our trainer's (learned
positions on top of RoPE, kaiming init, MegaBlocks' z-loss 0, Composer's weight decay not scaled
by the learning rate), so every setting we swept or fixed is written explicitly, and what has no
LLM Foundry equivalent is named in a warning in the file's header. Keys are checked against
what LLM Foundry reads (`llm_foundry_keys`); the tokenizer against the vocabulary (`vocab`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import yaml

from carbs.scaling.pick import LargeRunPick
from experiments.export.arch import config_defaults, full_arch, full_train
from experiments.export.llm_foundry_keys import check_model_keys
from experiments.export.vocab import check_vocab, resolve_tokenizer

NORM_TYPES = {"layernorm": "low_precision_layernorm", "rmsnorm": "low_precision_rmsnorm"}
PRECISIONS = {"bfloat16": "amp_bf16", "float32": "fp32", "auto": "amp_bf16"}
SAVE_EVERY_STEPS = 1000
# pick params the mapping below carries over (besides MoEConfig / TrainConfig fields)
HANDLED_OPTIONS = frozenset({"precision", "expert_impl"})


def render_llm_foundry(pick: LargeRunPick, sweep_name: str, tokenizer: str | None = None) -> str:
    """The YAML for `llm-foundry/scripts/train/train.py`, with a header of the prediction and
    of every warning. `tokenizer` (hub name or local path) is checked against vocab_size; None
    leaves `variables.tokenizer_name` for the user to fill in, with a warning."""
    doc, warnings = llm_foundry_config(pick, sweep_name, tokenizer)
    t = full_train(pick.params)
    lo, hi = pick.predicted_loss_ci
    head = [
        f"LLM Foundry training config for the large run of sweep {sweep_name!r}",
        f"{t['tokens']:.4g} tokens ({t['steps']} steps of {t['batch_size']} x "
        f"{doc['max_seq_len']}), {pick.target_flops:.4g} training FLOPs",
        f"predicted final loss {pick.predicted_loss:.4f} (90% CI {lo:.4f}-{hi:.4f})",
    ] + [f"warning: {w}" for w in [*pick.warnings, *warnings]]
    return "".join(f"# {line}\n" for line in head) + yaml.safe_dump(doc, sort_keys=False)


def llm_foundry_config(
    pick: LargeRunPick, sweep_name: str, tokenizer: str | None = None
) -> tuple[dict[str, Any], list[str]]:
    """(the training config, the warnings about settings it could not carry over)."""
    a, t = full_arch(pick.params), full_train(pick.params)
    warnings = _uncovered(pick.params)
    if tokenizer is None:
        tokenizer_name = "./tokenizer"
        warnings.append(
            f"no tokenizer was given: put one of at most vocab_size={a['vocab_size']} tokens at "
            "variables.tokenizer_name (the sweep trained its own BPE tokenizer), or export "
            "again with --tokenizer"
        )
    else:
        choice = resolve_tokenizer(tokenizer)
        check_vocab(choice, a["vocab_size"])
        tokenizer_name = choice.name
    warnings.append(
        "data: variables.data_local / data_remote are placeholders; point them at the MDS "
        f"conversion of the corpus the sweep trained on ({pick.params.get('corpus', 'the default')})"
    )
    model = _model(a)
    check_model_keys(model)
    tokens_per_step = t["batch_size"] * a["seq_len"]
    doc: dict[str, Any] = {
        "variables": {
            "run_name": f"{sweep_name}-large",
            "data_local": "./my-data",
            "data_remote": None,
            "tokenizer_name": tokenizer_name,
        },
        "run_name": "${variables.run_name}",
        "max_seq_len": a["seq_len"],
        "seed": int(t["seed"]),
        "model": model,
        "tokenizer": {
            "name": "${variables.tokenizer_name}",
            "kwargs": {"model_max_length": a["seq_len"]},
        },
        "optimizer": _optimizer(t),
        "scheduler": _scheduler(t),
        "algorithms": _algorithms(t),
        "max_duration": f"{t['steps']}ba",
        "global_train_batch_size": t["batch_size"],
        "device_train_microbatch_size": "auto",
        "device_eval_batch_size": max(1, min(t["batch_size"], 8)),
        "precision": PRECISIONS.get(str(pick.params.get("precision", "auto")), "amp_bf16"),
        "train_loader": _loader("train", a["seq_len"]),
        "eval_loader": _loader("val", a["seq_len"]),
        "eval_interval": f"{int(t['eval_every'])}ba",
        "eval_subset_num_batches": max(1, math.ceil(t["eval_tokens"] / tokens_per_step)),
        "eval_first": False,
        "save_folder": "./checkpoints/${variables.run_name}",
        "save_interval": f"{min(SAVE_EVERY_STEPS, t['steps'])}ba",
        "save_num_checkpoints_to_keep": 1,
        "autoresume": True,
        "fsdp_config": {
            "sharding_strategy": "FULL_SHARD",
            "mixed_precision": "PURE",
            "activation_checkpointing": False,
            "activation_cpu_offload": False,
            "limit_all_gathers": True,
            "use_orig_params": True,  # LLM Foundry requires it for expert parallelism
            "state_dict_type": "sharded",
        },
        "progress_bar": False,
        "log_to_console": True,
        "console_log_interval": "10ba",
    }
    if not doc["algorithms"]:
        del doc["algorithms"]
    return doc, warnings


def _model(a: Mapping[str, Any]) -> dict[str, Any]:
    model: dict[str, Any] = {
        "name": "mpt_causal_lm",
        "init_device": "meta",
        "d_model": a["d_model"],
        "n_heads": a["n_heads"],
        "n_layers": a["n_layers"],
        "max_seq_len": a["seq_len"],
        "vocab_size": a["vocab_size"],
        "no_bias": True,
        "norm_type": NORM_TYPES[a["norm"]],
        "learned_pos_emb": False,  # RoPE only, as swept (MPT defaults to learned positions)
        "resid_pdrop": 0.0,
        "emb_pdrop": 0.0,
        "tie_word_embeddings": bool(a["tie_embeddings"]),
        "attn_config": {
            "attn_type": "grouped_query_attention",
            "attn_impl": "flash",
            "attn_pdrop": 0.0,
            "kv_n_heads": a["n_kv_heads"],
            "clip_qkv": float(a["clip_qkv"]) if a["clip_qkv"] else None,
            "rope": True,
            "rope_theta": float(a["rope_theta"]),
            # rotate-half, as our model and Hugging Face's DBRX; 'dail' needs flash-attn's kernel
            "rope_impl": "hf",
        },
        "ffn_config": {
            "ffn_type": "mb_dmoe",  # dropless, as our dispatch
            "ffn_hidden_size": a["expert_hidden"],
            "ffn_act_fn": {"name": "silu"},
            "mlp_type": "glu",
            "mlp_impl": "grouped",
            "moe_num_experts": a["n_experts"],
            "moe_top_k": a["top_k"],
            "moe_normalize_expert_weights": 1,  # top-k weights renormalised to sum one
            "moe_jitter_eps": None,
            "moe_loss_weight": float(a["lb_loss_coef"]),
            "moe_lbl_in_fp32": True,  # our router losses are fp32
            "moe_zloss_weight": float(a["z_loss_coef"]),
            "moe_zloss_in_fp32": True,
            "moe_world_size": 1,  # experts unsharded; raise for expert parallelism
            "memory_optimized_mlp": False,
        },
        # ours: N(0, 0.02), residual outputs divided by sqrt(2 n_layers), norms at one
        "init_config": {
            "name": "normal_",
            "init_std": 0.02,
            "emb_init_std": 0.02,
            "init_div_is_residual": True,
        },
    }
    if a["head_dim"] * a["n_heads"] != a["d_model"]:
        model["head_dim"] = a["head_dim"]
    return model


def _optimizer(t: Mapping[str, Any]) -> dict[str, Any]:
    lr = float(t["learning_rate"])
    return {
        "name": "decoupled_adamw",
        "lr": lr,
        "betas": [float(t["beta1"]), float(t["beta2"])],
        "eps": 1.0e-8,
        # Composer's decoupled decay is not multiplied by the learning rate; torch AdamW's
        # (our trainer's) is, so the same per-step shrinkage is lr * weight_decay
        "weight_decay": lr * float(t["weight_decay"]),
        "param_groups": [{"param_str_match": "norm", "weight_decay": 0.0}],  # as ours
    }


def _scheduler(t: Mapping[str, Any]) -> dict[str, Any]:
    warmup = f"{t['warmup_steps']}ba"
    if t["schedule"] == "cosine":
        return {"name": "cosine_with_warmup", "t_warmup": warmup, "alpha_f": t["min_lr_ratio"]}
    # warmup-stable-decay: LLM Foundry's inverse-sqrt schedule with alpha_f_decay = 1 is
    # constant after warmup, then decays linearly to alpha_f_cooldown over t_cooldown
    decay_start = max(t["warmup_steps"], round((1 - float(t["decay_frac"])) * t["steps"]))
    return {
        "name": "inv_sqrt_with_warmup",
        "t_warmup": warmup,
        "t_scale": "1ba",
        "t_cooldown": f"{t['steps'] - decay_start}ba",
        "alpha_f_decay": 1.0,
        "alpha_f_cooldown": float(t["min_lr_ratio"]),
    }


def _algorithms(t: Mapping[str, Any]) -> dict[str, Any]:
    if not t["grad_clip"]:
        return {}
    return {
        "gradient_clipping": {"clipping_type": "norm", "clipping_threshold": float(t["grad_clip"])}
    }


def _loader(split: str, seq_len: int) -> dict[str, Any]:
    return {
        "name": "text",
        "dataset": {
            "local": "${variables.data_local}",
            "remote": "${variables.data_remote}",
            "split": split,
            "shuffle": split == "train",
            "max_seq_len": seq_len,
        },
        "drop_last": split == "train",
        "num_workers": 8,
    }


def _uncovered(params: Mapping[str, Any]) -> list[str]:
    """Warnings for pick params this export does not carry over."""
    covered = set(config_defaults("MoEConfig")) | set(config_defaults("TrainConfig"))
    covered |= HANDLED_OPTIONS
    out = []
    for key in sorted(set(params) - covered):
        if key in ("corpus", "corpus_max_bytes"):
            continue  # named in the data warning
        out.append(f"param {key}={params[key]!r} has no LLM Foundry setting and is not exported")
    return out
