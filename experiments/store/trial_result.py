"""What a finished trial's row records: the outcome a driver, a pruner or a test writes once.

Why a record: `Store.finish_trial` writes all of it in one transaction (the curve and the decay
branches only with the winning result), and the callers that build an outcome (recorder,
pruner, runner) pass it whole instead of a dozen loose keywords.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TrialResult:
    """A trial's outcome. status: a finished `TrialStatus`. metrics and worker overwrite the
    row's only where given. curve: learning-curve points; branches: decay branches, each
    {tokens, loss, cost, spent}, stored as succeeded child trials."""

    status: str
    loss: float | None = None
    cost_flops: float | None = None
    cost_seconds: float | None = None
    error: str | None = None
    failure_kind: str | None = None
    failure_reason: str | None = None
    metrics: Mapping[str, Any] | None = None
    worker: str | None = None
    curve: Sequence[Mapping[str, Any]] | None = None
    branches: Sequence[Mapping[str, float]] | None = None
