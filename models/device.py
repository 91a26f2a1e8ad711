"""Where and in what precision to train: thread count, measured matmul peak, dtype choice.

Why measure: MFU is only meaningful against what this machine's matmul actually reaches, and on
CPUs without native bf16 a bf16 autocast can be 100x slower than fp32. A short matmul probe (well
under a second, cached per process) gives the peak MFU is reported against and tells whether
bf16 is emulated; which dtype a trial uses is measured on its own step (`models.dtype_probe`).
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass
from typing import Any

import torch

PROBE_SIZE = 1024
PROBE_SECONDS = 0.1
BF16_MIN_SPEEDUP = 1.5


@dataclass(frozen=True)
class Precision:
    """Training precision: autocast dtype (None = plain fp32) and the measured peak FLOP/s."""

    dtype: str  # "float32" or "bfloat16"
    peak_flops: float

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return torch.bfloat16 if self.dtype == "bfloat16" else None


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype matmuls on x run in: autocast's where it is on for x's device, else x's."""
    if torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype


def choose_threads(extra: dict[str, Any] | None = None) -> int:
    """Threads for this trial: context.extra["num_threads"], else OMP_NUM_THREADS (Ray sets it
    to the task's num_cpus), else the cores this process may run on."""
    extra = extra or {}
    if extra.get("num_threads"):
        return max(1, int(extra["num_threads"]))
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    return max(1, len(os.sched_getaffinity(0)))


def _matmul_rate(size: int, dtype: torch.dtype, device: str, seconds: float) -> float:
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    (a @ b).sum().item()  # warm-up (and sync)
    n, start = 0, time.perf_counter()
    while True:
        c = a @ b
        n += 1
        if device == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            del c
            return 2.0 * size**3 * n / elapsed


@functools.lru_cache(maxsize=16)
def probe_peak_flops(dtype: str, device: str = "cpu", threads: int = 0) -> float:
    """Measured matmul FLOP/s for `dtype` on `device` at the current thread count.

    A 256^2 pre-probe first: if the dtype is emulated (~1 GFLOP/s) a 1024^2 product would take
    seconds, so the small figure is returned instead. `threads` is part of the cache key only.
    """
    torch_dtype = getattr(torch, dtype)
    size = PROBE_SIZE if device == "cpu" else 4 * PROBE_SIZE
    small = _matmul_rate(256, torch_dtype, device, 0.02)
    if small < 10e9 and device == "cpu":
        return small
    # Best of three short windows: on a shared machine the fastest window is closest to the
    # hardware's rate, and a momentary stall does not deflate the peak (and inflate MFU).
    return max(_matmul_rate(size, torch_dtype, device, PROBE_SECONDS / 3) for _ in range(3))


def choose_precision(device: str, threads: int, requested: str = "auto") -> Precision:
    """The requested dtype ("float32" or "bfloat16"), or for "auto": bf16 autocast on GPU and,
    on CPU, bf16 only where its matmuls probe at least BF16_MIN_SPEEDUP faster than fp32.

    The matmul rule is the fallback; trials measure their actual step instead
    (`models.dtype_probe.choose_dtype`). The peak MFU is reported against is always the measured
    one of the dtype used.
    """
    if requested == "auto":
        if device == "cuda":
            requested = "bfloat16"
        else:
            fp32 = probe_peak_flops("float32", device, threads)
            bf16 = probe_peak_flops("bfloat16", device, threads)
            requested = "bfloat16" if bf16 >= BF16_MIN_SPEEDUP * fp32 else "float32"
    return Precision(requested, probe_peak_flops(requested, device, threads))
