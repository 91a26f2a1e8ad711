"""Learning-rate schedules as pure functions of the step (multipliers of the peak rate)."""

from __future__ import annotations

import math


def lr_multiplier(
    step: int,
    total_steps: int,
    warmup_frac: float,
    schedule: str,
    min_lr_ratio: float,
    decay_frac: float = 0.2,
) -> float:
    """Multiplier in [min_lr_ratio, 1] for optimizer step `step` (0-based) of `total_steps`.

    Linear warmup over warmup_frac of the steps, then
    * "cosine": half-cosine from 1 down to min_lr_ratio at the last step;
    * "wsd" (warmup-stable-decay): constant 1, then linear decay to min_lr_ratio over the final
      decay_frac of the steps, which lets one run's stable phase be reused for several budgets.
    """
    warmup = int(round(warmup_frac * total_steps))
    if step < warmup:
        return (step + 1) / warmup
    last = max(total_steps - 1, 1)
    if schedule == "cosine":
        progress = min(1.0, (step - warmup) / max(last - warmup, 1))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    if schedule == "wsd":
        decay_start = max(warmup, int(round((1 - decay_frac) * total_steps)))
        if step < decay_start:
            return 1.0
        progress = min(1.0, (step - decay_start + 1) / max(total_steps - decay_start, 1))
        return 1.0 - (1 - min_lr_ratio) * progress
    raise ValueError(f"schedule {schedule!r} must be 'cosine' or 'wsd'")
