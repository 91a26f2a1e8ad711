"""Failure types shared by every stage.

Why a shared module: a workload (the built-in MoE trainer or a user's callable) must be able to
say "this *configuration* is bad" (diverged, out of memory, invalid shape) without importing the
sweep machinery, and the dispatcher must tell those apart from infrastructure failures, which are
retried and never shown to the optimizer.
"""

from __future__ import annotations


class ConfigFailure(Exception):
    """The configuration itself failed (divergence, NaN, out-of-memory, invalid shape).

    The optimizer learns from these: they are observations of failure, not retries.
    `reason` is a short machine-readable tag such as "diverged", "nan", "oom", "invalid".
    """

    def __init__(self, message: str, reason: str = "config") -> None:
        super().__init__(message)
        self.reason = reason


class InfrastructureFailure(Exception):
    """The trial could not run for reasons unrelated to its configuration (worker died,
    preemption, timeout, lost connection). Retried up to a limit, never observed as a loss."""


class SpecError(ValueError):
    """A sweep definition is invalid. The message names the file, the field path and the fix."""
