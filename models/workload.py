"""`train_moe`: the built-in sweep workload. Params dict in, loss + exact cost + curve out.

Why a thin layer over the trainer: the sweep speaks flat dicts and a TrialContext (picklable,
run inside a Ray task); the trainer speaks typed configs. This module translates, picks threads,
device and precision, rejects configs that cannot fit before building them, and assembles the
metrics the store keeps (parameter counts, tokens vs unique tokens, MFU, corpus fingerprint).
"""

from __future__ import annotations

import time
from typing import Any

import torch

from carbs.errors import ConfigFailure
from carbs.trial import TrialContext
from models.accounting import fits_device, memory_estimate_bytes, param_counts, training_flops
from models.config import MoEConfig, TrainConfig
from models.data import DEFAULT_CORPUS, DEFAULT_MAX_BYTES, TokenData, load_tokens
from models.device import choose_threads
from models.dtype_probe import PrecisionChoice, StepShape, choose_dtype
from models.model import MoETransformer
from models.trainer import TrainOptions, TrainResult, train


def _device_memory_bytes(device: str) -> int:
    if device == "cuda":
        return torch.cuda.mem_get_info()[1]
    import os

    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _truthy(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")


def train_moe(params: dict[str, Any], context: TrialContext | None = None) -> dict[str, Any]:
    """Train one MoE config and return {"loss", "cost", "seconds", "curve", "metrics"}.

    See `train_moe_model`, which also returns the trained model."""
    return train_moe_model(params, context)[0]


def train_moe_model(
    params: dict[str, Any], context: TrialContext | None = None
) -> tuple[dict[str, Any], MoETransformer]:
    """Train one MoE config; returns ({"loss", "cost", "seconds", "curve", "metrics"}, model).

    Params: every MoEConfig and TrainConfig field (flat), plus `corpus` ("stdlib" or a path),
    `corpus_max_bytes`, `precision` ("auto"/"float32"/"bfloat16"; auto times the step in both,
    `models.dtype_probe`), `expert_impl` ("auto"/"grouped"/"loop"), `compile` (torch.compile the
    blocks; opt-in, its compile time counts in train_seconds) and `fail_at_step` (tests: NaN at
    that step). If `seed` is absent
    the context's seed is used. `cost` is the exact training FLOPs of the tokens trained.

    Raises ConfigFailure(reason="invalid"|"nan"|"diverged"|"oom") for configuration failures.
    """
    started = time.perf_counter()
    context = context or TrialContext()
    params = dict(params)
    if "seed" not in params:
        params["seed"] = context.seed
    cfg = MoEConfig.from_params(params)
    tc = TrainConfig.from_params(params)
    device = _trial_device(context)
    threads = choose_threads(context.extra)
    torch.set_num_threads(threads)
    memory = int(context.extra.get("device_memory_bytes") or _device_memory_bytes(device))
    expert_impl = str(params.get("expert_impl", "auto"))
    choice = choose_dtype(
        StepShape(cfg, tc.batch_size, expert_impl),
        device,
        threads,
        str(params.get("precision", "auto")),
        can_probe=all(fits_device(cfg, tc, memory // 2, d) for d in ("float32", "bfloat16")),
    )
    precision = choice.precision
    _require_fit(cfg, tc, memory, precision.dtype, device)

    data = load_tokens(
        str(params.get("corpus", DEFAULT_CORPUS)),
        cfg.vocab_size,
        int(params.get("corpus_max_bytes", DEFAULT_MAX_BYTES)),
    )
    fail_at = params.get("fail_at_step")
    result = train(
        cfg,
        tc,
        data,
        TrainOptions(
            device=device,
            precision=precision,
            report=context.report,
            fail_at_step=int(fail_at) if fail_at is not None else None,
            expert_impl=expert_impl,
            compile_blocks=_truthy(params.get("compile", False)),
        ),
    )

    assert result.model is not None
    out = {
        "loss": result.val_loss,
        "cost": training_flops(cfg, result.tokens),
        "seconds": time.perf_counter() - started,
        "curve": result.curve,
        "branches": _branch_results(cfg, result),
        "metrics": _trial_metrics(cfg, result, data, choice, threads, device),
    }
    return out, result.model


def _trial_device(context: TrialContext) -> str:
    """The context's device where this process can train on it, else the CPU."""
    device = context.device if context.device in ("cpu", "cuda") else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        device = "cpu"
    return device


def _require_fit(cfg: MoEConfig, tc: TrainConfig, memory: int, dtype: str, device: str) -> None:
    """ConfigFailure(reason="oom") before anything is built when the run cannot fit `memory`."""
    if not fits_device(cfg, tc, memory, dtype):
        need = memory_estimate_bytes(cfg, tc, dtype)
        raise ConfigFailure(
            f"estimated {need / 2**30:.1f} GiB exceeds the {memory / 2**30:.1f} GiB of {device}; "
            "reduce batch_size, seq_len or the model size",
            reason="oom",
        )


def _branch_results(cfg: MoEConfig, result: TrainResult) -> list[dict[str, float]]:
    """The decay branches that evaluated, as {tokens, loss, cost, spent} for the store."""
    return [
        {
            "tokens": b["tokens"],
            "loss": b["val_loss"],
            "cost": training_flops(cfg, b["tokens"]),  # what a run that long costs alone
            "spent": training_flops(cfg, b["spent_tokens"]),  # what its cool-down cost here
        }
        for b in result.extra.get("branches", [])
        if "val_loss" in b
    ]


def _trial_metrics(
    cfg: MoEConfig,
    result: TrainResult,
    data: TokenData,
    choice: PrecisionChoice,
    threads: int,
    device: str,
) -> dict[str, Any]:
    """What the store keeps of a run: parameter counts, tokens vs unique tokens, speed and MFU,
    how the precision was chosen, where it ran, and the corpus it read."""
    precision = choice.precision
    counts = param_counts(cfg)
    cost = training_flops(cfg, result.tokens)
    unique = len(data.train)
    achieved = cost / result.train_seconds if result.train_seconds > 0 else float("nan")
    return {
        "params_total": counts.total,
        "params_active": counts.active,
        "params_embedding": counts.embedding,
        "params_non_embedding": counts.non_embedding,
        "params_active_non_embedding": counts.active_non_embedding,
        "tokens": result.tokens,
        "steps": result.steps,
        "unique_tokens": unique,
        "epochs": result.tokens / unique,
        "tokens_per_s": result.tokens / result.train_seconds,
        "flops_per_s": achieved,
        "mfu": achieved / precision.peak_flops,
        "dtype": precision.dtype,
        **choice.metrics(),
        "compiled": result.compiled,
        "peak_flops": precision.peak_flops,
        "threads": threads,
        "device": device,
        "train_seconds": result.train_seconds,
        "eval_seconds": result.eval_seconds,
        "corpus_fingerprint": data.fingerprint,
        "tokenizer_vocab_size": data.vocab_size,
    }
