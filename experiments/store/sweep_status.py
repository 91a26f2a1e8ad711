"""Sweep lifecycle states (trial states are `models.TrialStatus`)."""

from __future__ import annotations


class SweepStatus:
    """A cancel is requested by anyone (CLI, service) and carried out by the drivers running
    the sweep, which read the status every loop iteration."""

    CREATED = "created"
    RUNNING = "running"
    INTERRUPTED = "interrupted"
    FINISHED = "finished"
    CANCEL_REQUESTED = "cancel_requested"
    CANCELLED = "cancelled"

    CANCELLING = (CANCEL_REQUESTED, CANCELLED)
