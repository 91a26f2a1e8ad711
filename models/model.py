"""The DBRX-style decoder: embedding, n_layers x (attention + MoE) blocks, norm, LM head."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.config import MoEConfig
from models.layers import Attention, Norm
from models.losses import linear_cross_entropy
from models.moe import MoEFeedForward

INIT_STD = 0.02


@dataclass
class LossParts:
    """Cross-entropy, mean router losses over layers, and the weighted total to minimise."""

    ce: torch.Tensor
    load_balancing: torch.Tensor
    z: torch.Tensor
    total: torch.Tensor


class Block(nn.Module):
    """Pre-norm residual block: x + attn(norm(x)), then x + moe(norm(x))."""

    def __init__(self, cfg: MoEConfig, expert_impl: str) -> None:
        super().__init__()
        self.norm_attn = Norm(cfg.d_model, cfg.norm)
        self.attn = Attention(cfg)
        self.norm_moe = Norm(cfg.d_model, cfg.norm)
        self.moe = MoEFeedForward(cfg, expert_impl)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = x + self.attn(self.norm_attn(x))
        y, losses = self.moe(self.norm_moe(x))
        return x + y, losses.load_balancing, losses.z


class MoETransformer(nn.Module):
    """Decoder-only MoE LM. `expert_impl` picks the expert path ("auto", "grouped", "loop")."""

    def __init__(self, cfg: MoEConfig, expert_impl: str = "auto") -> None:
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg, expert_impl) for _ in range(cfg.n_layers))
        self.norm_f = Norm(cfg.d_model, cfg.norm)
        self.lm_head = (
            None if cfg.tie_embeddings else nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """N(0, 0.02) everywhere; residual-output projections (attention out, expert out)
        scaled by 1/sqrt(2 n_layers) so the residual stream's variance does not grow with depth."""
        depth_std = INIT_STD / math.sqrt(2 * self.cfg.n_layers)
        for name, p in self.named_parameters():
            if p.dim() == 1:
                nn.init.ones_(p)
            elif name.endswith(("out_proj.weight", "w_out")):
                nn.init.normal_(p, std=depth_std)
            else:
                nn.init.normal_(p, std=INIT_STD)

    def compile_blocks(self) -> None:
        """torch.compile each block (inductor; on CPU it needs a C++ compiler) for fused norms,
        RoPE, casts and router. The expert dispatch stays eager (`moe_dispatch` is excluded:
        its row counts change every step). Opt-in: compiling takes ~10-25 s per shape; measured,
        it paid after ~100-400 steps in bf16 and not at all in fp32 on a CPU without AMX
        (benchmarks/trainer/README.md)."""
        for block in self.blocks:
            block.compile(dynamic=False)

    @property
    def head_weight(self) -> torch.Tensor:
        """(V, d) output projection: the embedding table when tied."""
        return self.tok_emb.weight if self.lm_head is None else self.lm_head.weight

    def hidden(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """idx: (B, S) token ids -> final-normed states (B, S, d), mean lb loss, mean z-loss."""
        x = self.tok_emb(idx)
        lb, z = [], []
        for block in self.blocks:
            x, lb_i, z_i = block(x)
            lb.append(lb_i)
            z.append(z_i)
        return self.norm_f(x), torch.stack(lb).mean(), torch.stack(z).mean()

    def forward(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """idx: (B, S) token ids -> logits (B, S, V), mean load-balancing loss, mean z-loss."""
        x, lb, z = self.hidden(idx)
        return F.linear(x, self.head_weight), lb, z

    def loss(self, idx: torch.Tensor, targets: torch.Tensor) -> LossParts:
        """Next-token cross-entropy (fp32 softmax) plus the configured router losses; the
        logits are never kept (`models.losses.linear_cross_entropy`)."""
        x, lb, z = self.hidden(idx)
        ce = linear_cross_entropy(x.reshape(-1, x.shape[-1]), self.head_weight, targets.reshape(-1))
        total = ce + self.cfg.lb_loss_coef * lb + self.cfg.z_loss_coef * z
        return LossParts(ce=ce, load_balancing=lb, z=z, total=total)
