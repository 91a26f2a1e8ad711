"""The record the scaling-law stage consumes: one finished trial, whatever stored it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrialPoint:
    """One finished trial as the scaling fits see it.

    `params` holds the full config the workload received (fixed values included); `cost` is in
    FLOPs; `loss` is None exactly when `failed`; `curve` optionally holds learning-curve points
    ``{"step", "tokens", "flops", "train_loss", "val_loss"}``; `metrics` may hold
    params_active, params_total and tokens.
    """

    params: dict[str, Any]
    cost: float
    loss: float | None
    failed: bool = False
    curve: list[dict[str, Any]] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.failed and self.loss is None:
            raise ValueError("TrialPoint: a successful trial needs a loss (or set failed=True)")
        if not (self.cost > 0):
            raise ValueError(f"TrialPoint: cost must be positive FLOPs, got {self.cost!r}")
