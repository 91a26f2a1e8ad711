"""Our training step against Hugging Face `DbrxForCausalLM` on the same shapes, dtype, batch
and optimizer, steps interleaved round by round so both see the same machine load.

Variants per config and dtype: ours eager, ours with compiled blocks (first step, i.e. the
compile, timed apart and turned into a break-even step count), HF. HF's bf16 runs with bf16
weights, as the issue's baseline table did: its expert combine (`index_add_` of bf16 rows into
an fp32 buffer) fails under autocast over fp32 weights. So HF bf16 has no fp32 master copy and
no casts, cheaper than our recipe (autocast, fp32 master weights and optimizer state).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from models.accounting import flops_per_token
from models.config import MoEConfig, TrainConfig
from models.device import Precision, _matmul_rate
from models.dtype_probe import StepShape, choose_dtype
from models.model import MoETransformer
from models.trainer import autocast_context, make_optimizer

BATCH = 8
CONFIGS = {
    "d256 L4 E8 k2 ffn512": MoEConfig(d_model=256, n_layers=4, n_heads=4, n_kv_heads=2,
                                      n_experts=8, top_k=2, expert_hidden=512, vocab_size=8192,
                                      seq_len=256),
    "d512 L4 E8 k2 ffn1024": MoEConfig(d_model=512, n_layers=4, n_heads=8, n_kv_heads=2,
                                       n_experts=8, top_k=2, expert_hidden=1024, vocab_size=8192,
                                       seq_len=256),
}  # fmt: skip


def hf_dbrx(cfg: MoEConfig) -> nn.Module:
    """DbrxForCausalLM of the same shape (SDPA attention, no QKV clipping, no router loss)."""
    from transformers import DbrxConfig, DbrxForCausalLM

    config = DbrxConfig(
        d_model=cfg.d_model, n_heads=cfg.n_heads, n_layers=cfg.n_layers,
        max_seq_len=cfg.seq_len, vocab_size=cfg.vocab_size, use_cache=False,
        attn_config={"kv_n_heads": cfg.n_kv_heads, "rope_theta": cfg.rope_theta,
                     "clip_qkv": 1e4},  # HF clamps unconditionally; 1e4 never binds
        ffn_config={"ffn_hidden_size": cfg.expert_hidden, "moe_num_experts": cfg.n_experts,
                    "moe_top_k": cfg.top_k},
    )  # fmt: skip
    config._attn_implementation = "sdpa"
    return DbrxForCausalLM(config)


class Stepper:
    """One model + fused AdamW; `step()` times forward, backward, clip and the AdamW update."""

    def __init__(
        self,
        model: nn.Module,
        loss: Callable[[nn.Module, torch.Tensor], torch.Tensor],
        tokens: torch.Tensor,
        autocast: Precision,
    ) -> None:
        self.model, self.loss, self.tokens, self.autocast = model, loss, tokens, autocast
        self.opt = make_optimizer(model, TrainConfig(batch_size=tokens.shape[0]), "cpu")

    def step(self) -> float:
        start = time.perf_counter()
        with autocast_context("cpu", self.autocast):
            loss = self.loss(self.model, self.tokens)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return time.perf_counter() - start


def _ours(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return m.loss(x, x).total


def _hf(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return m(input_ids=x, labels=x).loss


def fresh_peak(dtype: str) -> float:
    """1024^2 matmul FLOP/s now, best of three 0.1 s windows."""
    return max(_matmul_rate(1024, getattr(torch, dtype), "cpu", 0.1) for _ in range(3))


def _variants(cfg: MoEConfig, dtype: str, x: torch.Tensor) -> dict[str, Stepper]:
    autocast = Precision(dtype, float("nan"))
    torch.manual_seed(0)
    eager = MoETransformer(cfg)
    compiled = MoETransformer(cfg)
    compiled.load_state_dict(eager.state_dict())
    compiled.compile_blocks()
    hf = hf_dbrx(cfg).to(getattr(torch, dtype))
    return {
        "ours eager": Stepper(eager, _ours, x, autocast),
        "ours compiled": Stepper(compiled, _ours, x, autocast),
        "HF": Stepper(hf, _hf, x, Precision("float32", float("nan"))),
    }


def versus_hf(threads: int, rounds: int) -> list[dict[str, Any]]:
    """Best-of-`rounds` step per variant, rounds interleaved; MFU against the peak of the dtype
    measured just before and after the rounds (the larger: least disturbed by other load)."""
    rows = []
    for name, cfg in CONFIGS.items():
        x = torch.randint(0, cfg.vocab_size, (BATCH, cfg.seq_len))
        tokens = BATCH * cfg.seq_len
        choice = choose_dtype(StepShape(cfg, BATCH), "cpu", threads)
        for dtype in ("float32", "bfloat16"):
            variants = _variants(cfg, dtype, x)
            first = {k: v.step() for k, v in variants.items()}  # compile, optimizer state
            peak = fresh_peak(dtype)
            times: dict[str, list[float]] = {k: [] for k in variants}
            for _ in range(rounds):
                for k, v in variants.items():
                    times[k].append(v.step())
            peak = max(peak, fresh_peak(dtype))
            best = {k: min(t) for k, t in times.items()}
            gain = best["ours eager"] - best["ours compiled"]
            compile_s = first["ours compiled"] - best["ours compiled"]
            for k, step_s in best.items():
                achieved = flops_per_token(cfg) * tokens / step_s
                row = {
                    "config": name, "dtype": dtype, "variant": k, "step_s": step_s,
                    "tokens_per_s": tokens / step_s, "gflops": achieved / 1e9,
                    "peak_gflops": peak / 1e9, "mfu": achieved / peak,
                    "vs_hf": best["HF"] / step_s, "auto_choice": choice.precision.dtype,
                    "auto_source": choice.probe.source,
                }  # fmt: skip
                if k == "ours compiled":
                    row["compile_s"] = compile_s
                    row["break_even_steps"] = compile_s / gain if gain > 0 else float("inf")
                rows.append(row)
                print(_fmt(row), flush=True)
            with contextlib.suppress(AttributeError):
                torch._dynamo.reset()  # the next config compiles afresh, not on top of these
    return rows


def _fmt(row: dict[str, Any]) -> str:
    return "  ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())
