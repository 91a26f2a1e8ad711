"""What runs inside a Ray worker for one trial: import the workload, call it, classify errors.

Why here and not in the workload: every workload (built-in or a user's callable) gets the same
contract: exceptions raised by the workload are config failures the optimizer learns from;
anything that kills the worker itself surfaces on the driver as an infrastructure failure.
"""

from __future__ import annotations

import inspect
import math
import os
import socket
import time
import traceback
from typing import Any

from carbs.errors import ConfigFailure, InfrastructureFailure
from carbs.trial import TrialContext
from experiments.dispatch.curve_stream import DEFAULT_INTERVAL_S, CurveStream
from experiments.dispatch.failures import classify_workload_error

CURVE_STORE_KEY = "curve_store"  # extra's key for the URL a running trial streams its curve to
CURVE_INTERVAL_KEY = "curve_interval_s"  # and for the seconds between its writes


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def execute_trial(
    entrypoint: str,
    params: dict[str, Any],
    trial_id: int,
    seed: int,
    device: str,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run one workload call and return a plain dict (see `TrialOutcome`).

    With `extra[CURVE_STORE_KEY]` (the store's URL) the curve is also written to the store as
    the trial reports it (`CurveStream`)."""

    curve: list[dict[str, Any]] = []
    extra = dict(extra or {})
    url, interval = extra.pop(CURVE_STORE_KEY, None), extra.pop(CURVE_INTERVAL_KEY, None)
    stream = None
    if url:
        stream = CurveStream(url, trial_id, float(interval or DEFAULT_INTERVAL_S))

    def report(point: dict[str, Any]) -> None:
        curve.append(point)
        if stream is not None:
            stream(point)

    ctx = TrialContext(trial_id=trial_id, seed=seed, device=device, report=report, extra=extra)
    try:
        return _run(entrypoint, params, ctx, curve)
    finally:
        if stream is not None:
            stream.close()


def _run(
    entrypoint: str, params: dict[str, Any], ctx: TrialContext, curve: list[dict[str, Any]]
) -> dict[str, Any]:
    from experiments.entrypoints import import_entrypoint  # light; keeps worker start-up small

    started = time.perf_counter()
    base = {"trial_id": ctx.trial_id, "worker": _worker_name(), "curve": curve}
    try:
        fn = import_entrypoint(entrypoint)
        wants_ctx = len(inspect.signature(fn).parameters) >= 2
        result = fn(dict(params), ctx) if wants_ctx else fn(dict(params))
        loss, cost = _read_result(result)
    except ConfigFailure as exc:
        return {
            **base,
            "status": "failed",
            "error": str(exc),
            "reason": exc.reason,
            "seconds": time.perf_counter() - started,
        }
    except InfrastructureFailure as exc:
        return {
            **base,
            "status": "infra",
            "error": str(exc),
            "reason": "infra",
            "seconds": time.perf_counter() - started,
        }
    except Exception as exc:  # noqa: BLE001 - a workload's exception is a failed config, never a crash
        tb = traceback.format_exc(limit=8)
        status, reason = classify_workload_error(exc)
        return {
            **base,
            "status": status,
            "error": f"{type(exc).__name__}: {exc}\n{tb}",
            "reason": reason,
            "seconds": time.perf_counter() - started,
        }
    seconds = float(result.get("seconds", time.perf_counter() - started))
    return {
        **base,
        "status": "succeeded",
        "loss": loss,
        "cost": cost,
        "seconds": seconds,
        "metrics": dict(result.get("metrics", {})),
        "curve": list(result.get("curve", curve)),
        "branches": _read_branches(result.get("branches")),
    }


def _read_branches(raw: Any) -> list[dict[str, float]]:
    """The result's decay branches (see models.branches) that are well formed: each a finite
    loss at a positive token count, with its standalone cost and the cost it added here."""
    out = []
    for b in raw or []:
        try:
            row = {k: float(b[k]) for k in ("tokens", "loss", "cost", "spent")}
        except (KeyError, TypeError, ValueError):
            continue
        if all(math.isfinite(v) for v in row.values()) and row["tokens"] > 0 and row["cost"] > 0:
            out.append(row)
    return out


def _read_result(result: Any) -> tuple[float, float]:
    if not isinstance(result, dict):
        raise ConfigFailure(
            f"workload returned {type(result).__name__}, expected a dict with 'loss' and 'cost'",
            reason="bad_result",
        )
    missing = [k for k in ("loss", "cost") if k not in result]
    if missing:
        raise ConfigFailure(
            f"workload result lacks {missing}; return at least 'loss' and 'cost'",
            reason="bad_result",
        )
    loss, cost = float(result["loss"]), float(result["cost"])
    if not math.isfinite(loss):
        raise ConfigFailure(f"workload returned a non-finite loss ({loss})", reason="nan")
    if not (math.isfinite(cost) and cost > 0):
        raise ConfigFailure(
            f"workload returned cost {cost}; cost must be positive and finite", reason="bad_result"
        )
    return loss, cost
