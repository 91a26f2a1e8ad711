"""Configuration of the DBRX-style MoE family and of one training run.

Why two dataclasses: the architecture (`MoEConfig`) is what the accounting prices and the model
builds; the training recipe (`TrainConfig`) is what the trainer follows. Both are read from the
sweep's flat params dict, whose keys are exactly the field names; other keys are ignored so one
dict can carry both (plus workload options such as `corpus`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from carbs.errors import ConfigFailure

T = TypeVar("T")

NORMS = ("layernorm", "rmsnorm")
SCHEDULES = ("cosine", "wsd")


def _from_params(cls: type[T], params: Mapping[str, Any]) -> T:
    """Build `cls` from the keys of `params` that are its fields, coercing to the field type.

    Sweeps often hand integers as floats (a log-uniform sample of d_model, say); coercion happens
    here once so the model never sees 127.99999 as a width.
    """
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in params or params[f.name] is None:
            continue
        value = params[f.name]
        kind = str(f.type)
        try:
            if kind.startswith("int"):
                value = int(round(float(value)))
            elif kind.startswith("float"):
                value = float(value)
            elif kind.startswith("bool"):
                value = value if isinstance(value, bool) else str(value).lower() in ("1", "true")
            elif kind.startswith("str"):
                value = str(value)
            elif kind.startswith("tuple"):
                items = [value] if isinstance(value, int | float | str) else list(value)
                value = tuple(float(v) for v in items)
        except (TypeError, ValueError) as exc:
            raise ConfigFailure(
                f"param {f.name!r}={value!r} is not a valid {kind}: {exc}", reason="invalid"
            ) from exc
        kwargs[f.name] = value
    return cls(**kwargs)


@dataclass(frozen=True)
class MoEConfig:
    """Shape of a DBRX-style decoder: GQA attention with RoPE, top-k routed GLU experts.

    DBRX itself is d_model=6144, n_layers=40, n_heads=48, n_kv_heads=8, n_experts=16, top_k=4,
    expert_hidden=10752, vocab_size=100352, seq_len=32768, rope_theta=5e5, clip_qkv=8.
    `expert_hidden` sets granularity: more, smaller experts at equal active parameters.
    `head_dim` of 0 means d_model // n_heads.
    """

    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: int = 2
    head_dim: int = 0
    n_experts: int = 8
    top_k: int = 2
    expert_hidden: int = 256
    vocab_size: int = 4096
    seq_len: int = 128
    rope_theta: float = 10000.0
    clip_qkv: float = 0.0
    norm: str = "layernorm"
    tie_embeddings: bool = False
    lb_loss_coef: float = 0.01
    z_loss_coef: float = 0.001

    def __post_init__(self) -> None:
        if self.head_dim == 0 and self.n_heads > 0 and self.d_model % self.n_heads == 0:
            object.__setattr__(self, "head_dim", self.d_model // self.n_heads)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> MoEConfig:
        """Read the architecture fields from a flat sweep params dict and validate them."""
        cfg = _from_params(cls, params)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise ConfigFailure(reason="invalid") naming the first inconsistent field."""
        positive = ("d_model", "n_layers", "n_heads", "n_kv_heads", "n_experts", "top_k",
                    "expert_hidden", "vocab_size", "seq_len")  # fmt: skip
        for name in positive:
            if getattr(self, name) < 1:
                _invalid(f"{name}={getattr(self, name)} must be >= 1")
        if self.head_dim == 0:
            _invalid(
                f"n_heads={self.n_heads} does not divide d_model={self.d_model}; "
                "choose a divisor or set head_dim explicitly"
            )
        if self.head_dim < 2 or self.head_dim % 2:
            _invalid(f"head_dim={self.head_dim} must be even (rotary pairs dimensions)")
        if self.n_heads % self.n_kv_heads:
            _invalid(
                f"n_kv_heads={self.n_kv_heads} must divide n_heads={self.n_heads} "
                "(grouped-query attention shares each kv head across a group)"
            )
        if self.top_k > self.n_experts:
            _invalid(f"top_k={self.top_k} exceeds n_experts={self.n_experts}")
        if self.norm not in NORMS:
            _invalid(f"norm={self.norm!r} must be one of {NORMS}")
        if self.rope_theta <= 0:
            _invalid(f"rope_theta={self.rope_theta} must be > 0")
        if self.clip_qkv < 0:
            _invalid(f"clip_qkv={self.clip_qkv} must be >= 0 (0 disables clipping)")
        if self.lb_loss_coef < 0 or self.z_loss_coef < 0:
            _invalid("lb_loss_coef and z_loss_coef must be >= 0")


@dataclass(frozen=True)
class TrainConfig:
    """One training run: AdamW, warmup then cosine or warmup-stable-decay, gradient clipping.

    `tokens` is the training budget; the trainer runs round(tokens / (batch_size * seq_len))
    steps (at least one) and prices exactly those tokens (see accounting.trained_tokens).
    `decay_frac` is the final fraction of steps over which "wsd" decays to min_lr.
    `branches` (wsd only): fractions of `tokens` at which a cool-down is branched off the stable
    phase, each giving the final loss of a run that long (`models.branches`).
    """

    learning_rate: float = 3e-3
    batch_size: int = 16
    tokens: int = 500_000
    warmup_frac: float = 0.05
    schedule: str = "cosine"
    decay_frac: float = 0.2
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    beta1: float = 0.9
    beta2: float = 0.95
    eval_every: int = 50
    eval_tokens: int = 32_768
    seed: int = 0
    min_lr_ratio: float = 0.1
    branches: tuple[float, ...] = ()  # wsd only: also report the loss at these fractions of tokens

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> TrainConfig:
        """Read the training fields from a flat sweep params dict and validate them."""
        cfg = _from_params(cls, params)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise ConfigFailure(reason="invalid") naming the first out-of-range field."""
        if not self.learning_rate > 0:
            _invalid(f"learning_rate={self.learning_rate} must be > 0")
        if self.batch_size < 1 or self.tokens < 1:
            _invalid("batch_size and tokens must be >= 1")
        if not 0 <= self.warmup_frac < 1 or not 0 <= self.decay_frac <= 1:
            _invalid("warmup_frac must be in [0, 1) and decay_frac in [0, 1]")
        if self.schedule not in SCHEDULES:
            _invalid(f"schedule={self.schedule!r} must be one of {SCHEDULES}")
        if not 0 <= self.min_lr_ratio <= 1:
            _invalid(f"min_lr_ratio={self.min_lr_ratio} must be in [0, 1]")
        if any(not 0 < f < 1 for f in self.branches) or len(self.branches) > 16:
            _invalid(f"branches={self.branches} must be at most 16 fractions of tokens in (0, 1)")
        if self.branches and self.schedule != "wsd":
            _invalid("branches need schedule: wsd (each is a cool-down from its stable phase)")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            _invalid("beta1 and beta2 must be in [0, 1)")
        if self.weight_decay < 0 or self.grad_clip < 0:
            _invalid("weight_decay and grad_clip must be >= 0 (grad_clip 0 disables clipping)")
        if self.eval_every < 1 or self.eval_tokens < 1:
            _invalid("eval_every and eval_tokens must be >= 1")


def _invalid(message: str) -> None:
    raise ConfigFailure(message, reason="invalid")


# keys `models.workload.train_moe` reads besides the two configs' fields
WORKLOAD_OPTIONS = (
    "corpus", "corpus_max_bytes", "precision", "expert_impl", "compile", "fail_at_step",
)  # fmt: skip


def moe_param_names() -> set[str]:
    """Every key the built-in MoE workload reads from a params dict; others would be ignored,
    so a sweep file naming one is refused as a typo."""
    fields = {f.name for cls in (MoEConfig, TrainConfig) for f in dataclasses.fields(cls)}
    return fields | set(WORKLOAD_OPTIONS)


def check_moe_params(params: Mapping[str, Any]) -> None:
    """Raise ConfigFailure unless `params` builds a valid MoEConfig and TrainConfig."""
    MoEConfig.from_params(params)
    TrainConfig.from_params(params)
