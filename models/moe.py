"""The mixture-of-experts feed-forward: router, dropless dispatch, grouped GLU experts.

Dropless (MegaBlocks-style): every (token, choice) pair is computed. Assignments are sorted by
expert so each expert sees one contiguous slice, and the experts run as one grouped matrix
product (`torch._grouped_mm`, the GPU path) or as a loop of per-expert matmuls over the same
slices (the CPU path, `models.expert_loop`, which FLOP counters understand). No capacity
factor, no drops.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.config import MoEConfig
from models.device import compute_dtype
from models.expert_loop import expert_loop_glu

EXPERT_IMPLS = ("auto", "grouped", "loop")


@dataclass
class RouterLosses:
    """Auxiliary router losses of one layer (scalars)."""

    load_balancing: torch.Tensor
    z: torch.Tensor


def load_balancing_loss(probs: torch.Tensor, expert_idx: torch.Tensor) -> torch.Tensor:
    """Switch-Transformer balance loss: n_experts * sum_e f_e * P_e.

    probs: (T, E) router probabilities; expert_idx: (T, k) chosen experts. f_e is the share of
    the T*k assignments sent to e, P_e the mean probability of e. Equals 1 at uniform routing.
    """
    n_experts = probs.shape[-1]
    counts = torch.bincount(expert_idx.reshape(-1), minlength=n_experts)
    frac = counts.to(probs.dtype) / expert_idx.numel()
    return n_experts * (frac * probs.mean(dim=0)).sum()


def router_z_loss(logits: torch.Tensor) -> torch.Tensor:
    """ST-MoE z-loss: mean squared log-partition; keeps router logits small and stable."""
    return torch.logsumexp(logits, dim=-1).square().mean()


class Router(nn.Module):
    """Linear gate, softmax in fp32, top-k with weights renormalised to sum to one (DBRX)."""

    def __init__(self, cfg: MoEConfig) -> None:
        super().__init__()
        self.top_k = cfg.top_k
        self.gate = nn.Linear(cfg.d_model, cfg.n_experts, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, RouterLosses]:
        """x: (T, d) -> weights (T, k) fp32, expert indices (T, k), aux losses."""
        logits = self.gate(x).float()  # (T, E)
        probs = logits.softmax(dim=-1)
        weights, expert_idx = probs.topk(self.top_k, dim=-1)
        weights = weights / weights.sum(dim=-1, keepdim=True)
        losses = RouterLosses(load_balancing_loss(probs, expert_idx), router_z_loss(logits))
        return weights, expert_idx, losses


def grouped_mm_supported(x: torch.Tensor, w: torch.Tensor) -> bool:
    """Whether the fused grouped product is the fast path here: CUDA sm90+ with 16-byte aligned
    rows (dims multiple of 8). On CPU torch._grouped_mm runs (tests compare it with the loop) but
    is itself a loop of matmuls and measured slower, so "auto" picks the loop there."""
    if not hasattr(torch, "_grouped_mm") or x.device.type != "cuda":
        return False
    if torch.cuda.get_device_capability(x.device)[0] < 9:
        return False
    return w.shape[-1] % 8 == 0 and w.shape[-2] % 8 == 0


class _ContiguousGrad(torch.autograd.Function):
    """Identity whose backward makes the incoming gradient contiguous: torch._grouped_mm's
    backward rejects the stride-0 gradients that e.g. a plain .sum() produces."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return grad.contiguous()


def grouped_matmul(x: torch.Tensor, w: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Multiply consecutive row slices of x by their expert's weight, as one torch._grouped_mm
    (in the autocast dtype, as autocast does not cover it).

    x: (N, K) rows sorted by expert; w: (E, K, M); counts: (E,) rows per expert -> (N, M).
    """
    dtype = compute_dtype(x)
    offsets = counts.cumsum(0).to(torch.int32)
    return _ContiguousGrad.apply(torch._grouped_mm(x.to(dtype), w.to(dtype), offs=offsets))


@torch.compiler.disable  # data-dependent row counts: compiled, it would recompile every step
def moe_dispatch(
    x: torch.Tensor,
    weights: torch.Tensor,
    expert_idx: torch.Tensor,
    n_experts: int,
    experts: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """Dropless top-k dispatch: sort assignments by expert, run experts, combine weighted.

    x: (T, d); weights, expert_idx: (T, k); experts(x_sorted (T*k, d), counts (E,)) returns
    (T*k, d_out) for rows grouped by expert. Returns (T, d_out) = sum_k weight * expert(x).
    """
    T, k = expert_idx.shape
    order = expert_idx.reshape(-1).argsort(stable=True)  # (T*k,) assignment ids by expert
    counts = torch.bincount(expert_idx.reshape(-1), minlength=n_experts)  # (E,)
    token = order // k  # (T*k,) the token each sorted row belongs to
    y_sorted = experts(x[token], counts)  # (T*k, d_out)
    # Weighted scatter-add straight from sorted order (no inverse permutation, no (T, k, d)
    # intermediate); elementwise, O(k d) per token, so it stays out of the FLOP count. In fp32
    # like the router weights; the residual stream it joins is fp32 too.
    rows = y_sorted.float() * weights.reshape(-1)[order].unsqueeze(-1)
    return rows.new_zeros(T, rows.shape[-1]).index_add_(0, token, rows)


class GroupedExperts(nn.Module):
    """n_experts GLU feed-forwards (SiLU gate, as DBRX), stored as stacked weights."""

    def __init__(self, cfg: MoEConfig, impl: str = "auto") -> None:
        super().__init__()
        if impl not in EXPERT_IMPLS:
            raise ValueError(f"expert impl {impl!r} must be one of {EXPERT_IMPLS}")
        self.impl = impl
        E, d, h = cfg.n_experts, cfg.d_model, cfg.expert_hidden
        self.w_in = nn.Parameter(torch.empty(E, d, 2 * h))  # w1 and v1 fused
        self.w_out = nn.Parameter(torch.empty(E, h, d))

    def forward(self, x: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """x: (N, d) rows sorted by expert, counts: (E,) -> (N, d)."""
        impl = self.impl
        if impl == "auto":
            impl = "grouped" if grouped_mm_supported(x, self.w_in) else "loop"
        if impl == "loop":
            return expert_loop_glu(x, self.w_in, self.w_out, counts.tolist())
        return self._glu(x, self.w_in, self.w_out, counts)

    @staticmethod
    def _glu(
        x: torch.Tensor, w_in: torch.Tensor, w_out: torch.Tensor, counts: torch.Tensor
    ) -> torch.Tensor:
        """silu(x w1) * (x v1) w2 for all experts at once, rows grouped by `counts`."""
        gate, up = grouped_matmul(x, w_in, counts).chunk(2, dim=-1)
        return grouped_matmul(F.silu(gate) * up, w_out, counts)


class MoEFeedForward(nn.Module):
    """Router + dropless grouped experts on a (B, S, d) stream."""

    def __init__(self, cfg: MoEConfig, impl: str = "auto") -> None:
        super().__init__()
        self.n_experts = cfg.n_experts
        self.router = Router(cfg)
        self.experts = GroupedExperts(cfg, impl)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, RouterLosses]:
        B, S, d = x.shape
        flat = x.reshape(B * S, d)
        weights, expert_idx, losses = self.router(flat)
        y = moe_dispatch(flat, weights, expert_idx, self.n_experts, self.experts)
        return y.view(B, S, d), losses
