"""What a workload is told about the trial it runs, and how it reports progress.

Why: a workload (the MoE trainer or a user's `module:function`) runs inside a Ray task, far from
the store. It gets a plain, picklable context: who it is, which device to use, and a `report`
callback for learning-curve points and liveness (the dispatcher turns these into stored metrics
and lease renewals).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ReportFn = Callable[[dict[str, Any]], None]


def _ignore(_: dict[str, Any]) -> None:
    return None


@dataclass
class TrialContext:
    """Per-trial information handed to a workload.

    `report(point)` takes one learning-curve point, e.g. ``{"step": 10, "tokens": 40960,
    "flops": 1.2e12, "train_loss": 5.1, "val_loss": 5.3}``; it may raise to ask the workload
    to stop (cancelled trial). `device` is "cpu" or "cuda".
    """

    trial_id: int = 0
    seed: int = 0
    device: str = "cpu"
    report: ReportFn = field(default=_ignore)
    extra: dict[str, Any] = field(default_factory=dict)
