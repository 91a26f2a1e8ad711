"""The failure taxonomy: which failures the optimizer learns from and which are retried.

Config failures (divergence, NaN, out-of-memory, invalid config, a workload's own exception) are
observations: the optimizer should learn that region is bad. Infrastructure failures (worker or
node died, preemption, timeout, lost connection, task cancelled) say nothing about the config:
they are retried up to `budget.max_retries` and never shown to the optimizer.

Why Ray's OutOfMemoryError counts as a config failure: Ray kills a task whose worker grows past
the node's memory, and with per-trial memory reservations the task that grew is, in practice,
the config that is too big; retrying it would only fail again.
"""

from __future__ import annotations

from typing import Literal

from ray import exceptions as rx

FailureClass = Literal["failed", "infra"]


def classify_ray_error(exc: BaseException) -> tuple[FailureClass, str]:
    """(status, reason) for an exception raised by `ray.get` on a trial task."""
    if isinstance(exc, rx.OutOfMemoryError):
        return "failed", "oom"
    if isinstance(exc, rx.TaskCancelledError):
        return "infra", "cancelled"
    if isinstance(exc, rx.NodeDiedError | rx.LocalRayletDiedError):
        return "infra", "node_died"
    if isinstance(exc, rx.WorkerCrashedError):
        return "infra", "worker_died"
    if isinstance(exc, rx.GetTimeoutError):
        return "infra", "timeout"
    if isinstance(exc, rx.ObjectLostError):
        return "infra", "result_lost"
    if isinstance(exc, rx.RuntimeEnvSetupError):
        return "infra", "runtime_env"
    return "infra", "ray_error"


def classify_workload_error(exc: BaseException) -> tuple[FailureClass, str]:
    """(status, reason) for an exception a workload raised inside its task (not a ConfigFailure
    or InfrastructureFailure, which say so themselves)."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return "failed", "oom"  # host MemoryError, torch.OutOfMemoryError (CUDA)
    if isinstance(exc, ConnectionError):
        return "infra", "connection"
    return "failed", "exception"
