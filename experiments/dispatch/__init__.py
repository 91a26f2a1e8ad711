"""Running trials: the Ray task that executes one workload call, and the dispatcher that
keeps trials in flight on a local or remote Ray cluster."""

from experiments.dispatch.outcome import TrialOutcome
from experiments.dispatch.ray_dispatcher import RayDispatcher, TaskResources

__all__ = ["RayDispatcher", "TaskResources", "TrialOutcome"]
