"""Parameter, FLOP and memory accounting for the MoE family, from the config alone.

Why pure functions beside the config: the scaling-law stage prices 100B-parameter candidates
without building them, and the trainer reports its cost from the same formulas, so the cost axis
of the whole search is one definition.

FLOP convention (training, per token), matching torch's FlopCounterMode on this model:

    flops_per_token = 6 * active_matmul_params + 12 * n_layers * seq_len * n_heads * head_dim

* `active_matmul_params` are the weights a token multiplies through: per layer the fused QKV
  projection d*(n_heads + 2*n_kv_heads)*head_dim, the output projection n_heads*head_dim*d, the
  router d*n_experts and top_k experts of 3*d*expert_hidden (GLU: w1, v1, w2); plus the output
  head d*vocab (counted even when tied: it is still a matmul). 2 FLOPs per multiply-add forward,
  4 backward (input and weight gradients) => 6.
* Attention scores (q k^T) and values (p v) cost 2*seq_len*n_heads*head_dim each per token and
  layer forward, x3 with backward. The causal mask is not subtracted: the kernels compute (or the
  convention counts) the full square, as Kaplan et al. and Chinchilla do.
* Norms, activations, softmax, RoPE, the embedding lookup and the optimizer are elementwise
  (O(params + d) per token) and are left out, as in those papers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from models.config import MoEConfig, TrainConfig

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass(frozen=True)
class ParamCounts:
    """Parameter counts. `embedding` is the input table plus an untied output head."""

    total: int
    active: int
    embedding: int
    non_embedding: int
    active_non_embedding: int


def _attention_params(cfg: MoEConfig) -> int:
    qkv = cfg.d_model * (cfg.n_heads + 2 * cfg.n_kv_heads) * cfg.head_dim
    return qkv + cfg.n_heads * cfg.head_dim * cfg.d_model


def _expert_params(cfg: MoEConfig) -> int:
    return 3 * cfg.d_model * cfg.expert_hidden


def param_counts(cfg: MoEConfig) -> ParamCounts:
    """Exact parameter counts of `models.model.MoETransformer(cfg)`.

    Per layer: two norm weights (no biases, as in DBRX), attention, router, n_experts experts.
    Active parameters replace n_experts by top_k experts.
    """
    d = cfg.d_model
    per_layer_shared = 2 * d + _attention_params(cfg) + d * cfg.n_experts
    embedding = cfg.vocab_size * d * (1 if cfg.tie_embeddings else 2)
    non_embedding = cfg.n_layers * (per_layer_shared + cfg.n_experts * _expert_params(cfg)) + d
    active_non_embedding = cfg.n_layers * (per_layer_shared + cfg.top_k * _expert_params(cfg)) + d
    return ParamCounts(
        total=embedding + non_embedding,
        active=embedding + active_non_embedding,
        embedding=embedding,
        non_embedding=non_embedding,
        active_non_embedding=active_non_embedding,
    )


def active_matmul_params(cfg: MoEConfig) -> int:
    """Weights one token is multiplied through (see module docstring)."""
    per_layer = _attention_params(cfg) + cfg.d_model * cfg.n_experts
    per_layer += cfg.top_k * _expert_params(cfg)
    return cfg.n_layers * per_layer + cfg.d_model * cfg.vocab_size


def attention_flops_per_token(cfg: MoEConfig) -> float:
    """Training FLOPs of attention scores and weighted values, per token, all layers."""
    return 12.0 * cfg.n_layers * cfg.seq_len * cfg.n_heads * cfg.head_dim


def flops_per_token(cfg: MoEConfig) -> float:
    """Forward + backward training FLOPs per token (module docstring has the formula)."""
    return 6.0 * active_matmul_params(cfg) + attention_flops_per_token(cfg)


def trained_tokens(tokens: float, batch_size: int, seq_len: int) -> int:
    """Tokens the trainer actually processes for a budget: whole steps, at least one."""
    per_step = batch_size * seq_len
    return max(1, round(tokens / per_step)) * per_step


def training_flops(cfg: MoEConfig, tokens: float) -> float:
    """Training FLOPs for `tokens` tokens (evaluation passes are not included)."""
    return flops_per_token(cfg) * float(tokens)


def training_flops_for_params(params: Mapping[str, Any]) -> float:
    """Price a sweep params dict without training it.

    Uses the same whole-step rounding as the trainer when `batch_size` is given, so the
    predicted cost equals the reported one.
    """
    cfg = MoEConfig.from_params(params)
    tokens = float(params["tokens"])
    if params.get("batch_size") is not None:
        tokens = trained_tokens(tokens, int(round(float(params["batch_size"]))), cfg.seq_len)
    return training_flops(cfg, tokens)


def active_params_for_params(params: Mapping[str, Any]) -> float:
    """Active non-embedding parameters of a sweep params dict: the size a scaling law takes as
    N (Kaplan et al. 2020: without embeddings the laws hold down to small models)."""
    return float(param_counts(MoEConfig.from_params(params)).active_non_embedding)


def activation_bytes(cfg: MoEConfig, batch_size: int, dtype: str = "float32") -> int:
    """Approximate activations saved for backward in one step (flash attention, no s^2 term).

    Per token and layer: norms, QKV, attention output and projection (~6 d + 3 qkv widths),
    router logits, the top_k gathered inputs and outputs (2 k d) and the GLU hidden states
    (3 k h). Plus logits and their fp32 softmax gradient (3 * vocab * 4 bytes per token).
    """
    b = DTYPE_BYTES[dtype]
    qkv = (cfg.n_heads + 2 * cfg.n_kv_heads) * cfg.head_dim
    per_layer = 6 * cfg.d_model + 3 * qkv + cfg.n_experts
    per_layer += 2 * cfg.top_k * cfg.d_model + 3 * cfg.top_k * cfg.expert_hidden
    tokens = batch_size * cfg.seq_len
    # fp32 router/softmax side tensors and indices add roughly a quarter on top.
    layers = int(1.25 * tokens * cfg.n_layers * per_layer * b)
    head = tokens * cfg.vocab_size * (b + 3 * 4)
    return layers + head


def memory_estimate_bytes(cfg: MoEConfig, train_cfg: TrainConfig, dtype: str = "float32") -> int:
    """Peak training memory: fp32 master weights, grads and two AdamW moments (16 B/param),
    a low-precision weight copy under autocast, and activations of one batch."""
    n = param_counts(cfg).total
    states = 16 * n + (n * DTYPE_BYTES[dtype] if dtype != "float32" else 0)
    return states + activation_bytes(cfg, train_cfg.batch_size, dtype)


def fits_device(
    cfg: MoEConfig,
    train_cfg: TrainConfig,
    device_memory_bytes: int,
    dtype: str = "float32",
    headroom: float = 0.85,
) -> bool:
    """Whether the run should fit: the estimate within `headroom` of the device memory.

    Used to reject configs before dispatch; a wrong "yes" is still caught as an OOM failure.
    """
    return memory_estimate_bytes(cfg, train_cfg, dtype) <= headroom * device_memory_bytes
