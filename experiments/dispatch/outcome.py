"""The result of one trial attempt, as the dispatcher hands it to the sweep loop."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

OutcomeStatus = Literal["succeeded", "failed", "infra"]


@dataclass
class TrialOutcome:
    """`failed` is a config failure (observed by the optimizer); `infra` is retried."""

    trial_id: int
    status: OutcomeStatus
    loss: float | None = None
    cost: float | None = None
    seconds: float | None = None
    error: str | None = None
    reason: str | None = None
    worker: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    curve: list[dict[str, Any]] = field(default_factory=list)
    branches: list[dict[str, float]] = field(default_factory=list)  # decay branches' results
