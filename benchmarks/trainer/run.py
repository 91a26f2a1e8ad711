"""Trainer benchmark: our step against DbrxForCausalLM (tokens/s, MFU against the measured
matmul peak of the dtype used, eager and compiled), the MoE/dense step-time ratio at equal
active FLOPs, and end-to-end seconds of tiny sweep trials.

    python -m benchmarks.trainer.run [--threads N] [--quick] [--only hf|dense|trials]

Writes benchmarks/results/trainer.json (git-ignored) and prints a table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.trainer.versus_hf import CONFIGS, Stepper, fresh_peak, versus_hf
from carbs.trial import TrialContext
from models.accounting import flops_per_token
from models.config import MoEConfig
from models.device import Precision, probe_peak_flops
from models.model import MoETransformer
from models.moe import RouterLosses
from models.workload import train_moe

THROUGHPUT = {
    "tiny d64": MoEConfig(d_model=64, n_layers=1, n_heads=4, n_kv_heads=2, n_experts=4, top_k=1,
                          expert_hidden=128, vocab_size=2048, seq_len=128),
    "small d128": MoEConfig(d_model=128, n_layers=2, n_heads=4, n_kv_heads=2, n_experts=8,
                            top_k=2, expert_hidden=256, vocab_size=4096, seq_len=128),
    "largest-cpu d512": MoEConfig(d_model=512, n_layers=4, n_heads=8, n_kv_heads=2, n_experts=8,
                                  top_k=2, expert_hidden=1024, vocab_size=8192, seq_len=256),
}  # fmt: skip

TINY_TRIALS = {
    "d64 L1 E4 k1 h128 V2048": dict(d_model=64, n_layers=1, n_heads=4, n_kv_heads=2, n_experts=4,
                                    top_k=1, expert_hidden=128, vocab_size=2048),
    "d96 L2 E8 k2 h128 V2048": dict(d_model=96, n_layers=2, n_heads=4, n_kv_heads=2, n_experts=8,
                                    top_k=2, expert_hidden=128, vocab_size=2048),
    "d128 L2 E8 k2 h256 V4096": dict(d_model=128, n_layers=2, n_heads=4, n_kv_heads=2,
                                     n_experts=8, top_k=2, expert_hidden=256, vocab_size=4096),
}  # fmt: skip


class DenseGLU(nn.Module):
    """A dense GLU FFN standing in for the MoE layer (same interface, no routing)."""

    def __init__(self, d_model: int, hidden: int) -> None:
        super().__init__()
        self.w_in = nn.Linear(d_model, 2 * hidden, bias=False)
        self.w_out = nn.Linear(hidden, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, RouterLosses]:
        gate, up = self.w_in(x).chunk(2, dim=-1)
        zero = x.new_zeros(())
        return self.w_out(F.silu(gate) * up), RouterLosses(zero, zero)


def dense_equivalent(cfg: MoEConfig) -> MoETransformer:
    """Same attention and head; each MoE layer replaced by a dense GLU of top_k * expert_hidden
    (equal expert FLOPs; the MoE additionally pays its router, d * n_experts per token)."""
    model = MoETransformer(cfg)
    for block in model.blocks:
        block.moe = DenseGLU(cfg.d_model, cfg.top_k * cfg.expert_hidden)
    return model


def _loss(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model.loss(x, x).total


def throughput(threads: int, steps: int) -> list[dict[str, Any]]:
    """Best-of-N step times, MoE and dense interleaved, peak re-measured beside them: on a
    shared machine the minimum is the figure least disturbed by other processes."""
    rows = []
    for name, cfg in THROUGHPUT.items():
        batch = 16 if cfg.d_model < 512 else 8
        for dtype in ("float32", "bfloat16"):
            torch.manual_seed(0)
            precision = Precision(dtype, 0.0)
            x = torch.randint(0, cfg.vocab_size, (batch, cfg.seq_len))
            moe = Stepper(MoETransformer(cfg), _loss, x, precision)
            dense = Stepper(dense_equivalent(cfg), _loss, x, precision)
            moe.step(), dense.step()  # optimizer state allocation
            peak = fresh_peak(dtype)
            t_moe, t_dense = zip(*[(moe.step(), dense.step()) for _ in range(steps)], strict=True)
            peak = max(peak, fresh_peak(dtype))
            tokens = batch * cfg.seq_len
            achieved = flops_per_token(cfg) * tokens / min(t_moe)
            rows.append({
                "config": name, "dtype": dtype, "threads": threads, "batch": batch,
                "step_s": min(t_moe), "dense_step_s": min(t_dense),
                "tokens_per_s": tokens / min(t_moe), "gflops": achieved / 1e9,
                "peak_gflops": peak / 1e9, "mfu": achieved / peak,
                "moe_over_dense": min(t_moe) / min(t_dense),
            })  # fmt: skip
            print(_fmt(rows[-1]), flush=True)
    return rows


def tiny_trials(threads: int, tokens: int) -> list[dict[str, Any]]:
    rows = []
    for name, arch in TINY_TRIALS.items():
        for precision in ("float32", "auto"):
            params = {**arch, "seq_len": 128, "batch_size": 16, "tokens": tokens,
                      "learning_rate": 3e-3, "eval_tokens": 16384, "precision": precision}  # fmt: skip
            start = time.perf_counter()
            result = train_moe(params, TrialContext(extra={"num_threads": threads}))
            m = result["metrics"]
            rows.append({
                "trial": name, "precision": precision, "dtype": m["dtype"],
                "dtype_source": m["dtype_source"], "probe_s": m["probe_seconds"],
                "tokens": m["tokens"],
                "wall_s": time.perf_counter() - start, "train_s": m["train_seconds"],
                "tokens_per_s": m["tokens_per_s"], "mfu": m["mfu"], "val_loss": result["loss"],
            })  # fmt: skip
            print(_fmt(rows[-1]), flush=True)
    return rows


def _fmt(row: dict[str, Any]) -> str:
    return "  ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="fewer steps and tokens")
    parser.add_argument("--only", choices=("hf", "dense", "trials"), help="one section only")
    parser.add_argument("--out", default="benchmarks/results/trainer.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
    print(f"threads={args.threads} loadavg={load}")
    peaks = {d: probe_peak_flops(d, "cpu", args.threads) / 1e9 for d in ("float32", "bfloat16")}
    print(f"measured peak GFLOP/s: {peaks}")
    report: dict[str, Any] = {"threads": args.threads, "loadavg_at_start": load,
                              "peak_gflops": peaks}  # fmt: skip
    if args.only in (None, "hf"):
        report["versus_hf"] = versus_hf(args.threads, 3 if args.quick else 6)
        report["versus_hf_configs"] = {k: dataclasses.asdict(v) for k, v in CONFIGS.items()}
    if args.only in (None, "dense"):
        report["throughput"] = throughput(args.threads, 3 if args.quick else 8)
        report["configs"] = {k: dataclasses.asdict(v) for k, v in THROUGHPUT.items()}
    if args.only in (None, "trials"):
        report["tiny_trials"] = tiny_trials(args.threads, 100_000 if args.quick else 200_000)
    report["loadavg_at_end"] = Path("/proc/loadavg").read_text().split()[0]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
