"""The measured dtype choice: time the trial's actual training step in fp32 and bf16, keep the
faster, and remember the answer per machine and shape.

Why the step and not a matmul: whether bf16 autocast pays depends on the share of the step that
is matmul, the casts around it and how fast this CPU's bf16 kernels are; all three vary with the
shape (narrow models measured up to 2x slower in bf16 on a CPU whose bf16 matmuls were 2.4x
faster) and with the machine (some CPUs emulate bf16 at ~1 GFLOP/s, others have AMX units 8x
faster than fp32). Master weights and optimizer state stay fp32 in both cases: bf16 is autocast.

The answer is cached in `cache_dir()/dtype_probe.json` under a key naming the CPU, torch, the
thread count and the shape, so a sweep pays one probe per distinct shape, and in-process.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from models.config import MoEConfig, TrainConfig
from models.data import cache_dir
from models.device import Precision, choose_precision, probe_peak_flops
from models.model import MoETransformer
from models.trainer import autocast_context, make_optimizer, oom_as_config_failure

DTYPES = ("float32", "bfloat16")
TIMED_STEPS = 2  # per dtype after one warm-up; the fastest is kept (least disturbed by load)
EMULATED_RATIO = 1.0  # bf16 matmuls slower than fp32 ones: emulated, no step is worth timing
_MEMO: dict[str, ProbeResult] = {}


@dataclass(frozen=True)
class ProbeResult:
    """Seconds of one training step per dtype probed (absent: not timed) and the faster one."""

    dtype: str
    step_seconds: dict[str, float]
    source: str  # "measured", "cache", "requested", "cuda", "bf16 emulated" or "too large"
    spent_seconds: float = 0.0  # wall time this trial spent probing (0 when cached)


@dataclass(frozen=True)
class PrecisionChoice:
    """The precision a trial trains in and how it was chosen (recorded with the trial)."""

    precision: Precision
    probe: ProbeResult

    def metrics(self) -> dict[str, float | str]:
        """Flat fields for the trial's metrics (the store keeps them; MLflow logs numbers)."""
        out: dict[str, float | str] = {
            "dtype_source": self.probe.source,
            "probe_seconds": self.probe.spent_seconds,
        }
        for dtype, seconds in self.probe.step_seconds.items():
            out[f"probe_step_s_{dtype}"] = seconds
        return out


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}|torch {torch.__version__}|threads {torch.get_num_threads()}"


def probe_key(cfg: MoEConfig, batch_size: int, expert_impl: str) -> str:
    """Cache key: machine, torch version, threads and every field that changes the step."""
    shape = json.dumps(dataclasses.asdict(cfg), sort_keys=True)
    return f"{_machine()}|batch {batch_size}|experts {expert_impl}|{shape}"


def _cache_file() -> Path:
    return cache_dir() / "dtype_probe.json"


def _load_cache() -> dict[str, dict]:
    try:
        return json.loads(_cache_file().read_text())
    except (OSError, ValueError):
        return {}


def _store(key: str, result: ProbeResult) -> None:
    cache = _load_cache()
    cache[key] = {"dtype": result.dtype, "step_seconds": result.step_seconds}
    path = _cache_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{time.time_ns()}.tmp")  # atomic: parallel trials share the file
    tmp.write_text(json.dumps(cache, indent=1, sort_keys=True))
    tmp.replace(path)


def time_steps(
    cfg: MoEConfig, batch_size: int, expert_impl: str = "auto", steps: int = TIMED_STEPS
) -> dict[str, float]:
    """Fastest full training step (forward, backward, clip, AdamW) in each dtype, on CPU.

    One model per dtype, warmed up once, then the dtypes' steps interleaved so both see the
    same machine load. Runs under a fixed seed and restores the global RNG state afterwards.
    """
    rng = torch.get_rng_state()
    torch.manual_seed(0)
    tokens = torch.randint(0, cfg.vocab_size, (batch_size, cfg.seq_len))
    steppers = {}
    for dtype in DTYPES:
        model = MoETransformer(cfg, expert_impl)
        optimizer = make_optimizer(model, TrainConfig(batch_size=batch_size), "cpu")
        steppers[dtype] = (model, optimizer, Precision(dtype, float("nan")))

    def one(dtype: str) -> float:
        model, optimizer, precision = steppers[dtype]
        start = time.perf_counter()
        with autocast_context("cpu", precision):
            loss = model.loss(tokens, tokens).total
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    for dtype in DTYPES:
        one(dtype)  # optimizer state, allocator and kernel warm-up
    best = {dtype: min(one(dtype) for _ in range(steps)) for dtype in DTYPES}
    torch.set_rng_state(rng)
    return best


@dataclass(frozen=True)
class StepShape:
    """The training step a probe times (and its cache key names): the model's shape, the batch
    size and the experts' kernel (`MoETransformer`'s `expert_impl`)."""

    cfg: MoEConfig
    batch_size: int
    expert_impl: str = "auto"


def choose_dtype(
    step: StepShape,
    device: str,
    threads: int,
    requested: str = "auto",
    can_probe: bool = True,
) -> PrecisionChoice:
    """The precision to train `step.cfg` at `step.batch_size` in: `requested` when not "auto",
    bf16 on CUDA, else the faster dtype of a probe of the actual step (cached per machine and
    shape).

    `can_probe` False (two models of this shape would not fit in memory) falls back to the
    matmul-peak rule of `choose_precision`. The peak MFU is reported against is the measured
    matmul peak of the dtype chosen.
    """
    if requested != "auto" or device == "cuda" or not can_probe:
        precision = choose_precision(device, threads, requested)
        source = "requested" if requested != "auto" else "cuda" if device == "cuda" else "too large"
        return PrecisionChoice(precision, ProbeResult(precision.dtype, {}, source))
    fp32, bf16 = (probe_peak_flops(d, device, threads) for d in DTYPES)
    if bf16 < EMULATED_RATIO * fp32:
        probe = ProbeResult("float32", {}, "bf16 emulated")
    else:
        probe = _probe_cached(step.cfg, step.batch_size, step.expert_impl)
    peak = probe_peak_flops(probe.dtype, device, threads)
    return PrecisionChoice(Precision(probe.dtype, peak), probe)


def _probe_cached(cfg: MoEConfig, batch_size: int, expert_impl: str) -> ProbeResult:
    key = probe_key(cfg, batch_size, expert_impl)
    if key in _MEMO:
        return _MEMO[key]
    cached = _load_cache().get(key)
    if cached:
        result = ProbeResult(cached["dtype"], dict(cached["step_seconds"]), "cache")
    else:
        start = time.perf_counter()
        with oom_as_config_failure("cpu"):  # two models of a shape that barely fits
            seconds = time_steps(cfg, batch_size, expert_impl)
        fastest = min(seconds, key=seconds.__getitem__)
        result = ProbeResult(fastest, seconds, "measured", time.perf_counter() - start)
        _store(key, result)
    _MEMO[key] = dataclasses.replace(result, source="cache", spent_seconds=0.0)
    return result
