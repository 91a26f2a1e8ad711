"""Keep trials in flight on Ray: a local cluster started on demand, or an existing one by address.

Each trial is one Ray task that asks for its own resources (CPUs, a GPU where the cluster has
one, memory). Ray-level failures come back classified (`failures.classify_ray_error`): worker
or node died, task cancelled, timeout are `infra` outcomes the sweep loop retries and never
shows to the optimizer. The per-trial timeout counts from submission; the runner keeps no more
trials in flight than the cluster fits (`capacity`), so queueing time stays small.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import RayError

from experiments.dispatch.curve_stream import DEFAULT_INTERVAL_S, absolute_store_url
from experiments.dispatch.failures import classify_ray_error
from experiments.dispatch.outcome import TrialOutcome
from experiments.dispatch.task import CURVE_INTERVAL_KEY, CURVE_STORE_KEY, execute_trial


@dataclass(frozen=True)
class TaskResources:
    num_cpus: float = 1.0
    num_gpus: float | str = "auto"
    memory_gb: float | None = None
    timeout_s: float | None = None


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to Ray once per process: `address` for an existing cluster, else a local one.

    The local cluster gets the driver's working directory on its PYTHONPATH so a user's
    `module:function` workload next to the sweep file imports in the workers too.
    """
    if ray.is_initialized():
        return
    path = os.pathsep.join(p for p in [os.getcwd(), *sys.path] if p and os.path.isdir(p))
    runtime_env = {"env_vars": {"PYTHONPATH": path, "TOKENIZERS_PARALLELISM": "false"}}
    if address:
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
    else:
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env=runtime_env,
            configure_logging=False,
        )


@ray.remote(max_retries=0)
def _trial_task(
    entrypoint: str,
    params: dict[str, Any],
    trial_id: int,
    seed: int,
    device: str,
    extra: dict[str, Any],
) -> dict[str, Any]:
    return execute_trial(entrypoint, params, trial_id, seed, device, extra)


class RayDispatcher:
    """Submit trials as Ray tasks and collect their outcomes as they finish."""

    def __init__(
        self, entrypoint: str, resources: TaskResources, address: str | None = None
    ) -> None:
        self.entrypoint = entrypoint
        self.resources = resources
        self.address = address
        self._refs: dict[Any, tuple[int, float]] = {}  # ref -> (trial_id, submitted_at)
        self._num_gpus = 0.0
        self._curve_store: str | None = None
        self._curve_interval_s = DEFAULT_INTERVAL_S

    def stream_curves_to(self, store_url: str, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        """Have every trial write its curve points to this store as it runs, every
        `interval_s` seconds."""
        self._curve_store = absolute_store_url(store_url)
        self._curve_interval_s = float(interval_s)

    def start(self) -> None:
        ensure_ray(self.address)
        gpus = float(ray.cluster_resources().get("GPU", 0.0))
        want = self.resources.num_gpus
        self._num_gpus = (1.0 if gpus >= 1 else 0.0) if want == "auto" else float(want)

    @property
    def device(self) -> str:
        return "cuda" if self._num_gpus > 0 else "cpu"

    def capacity(self) -> int:
        """How many trials the cluster can run at once with the per-trial resources."""
        res = ray.cluster_resources()
        n = int(res.get("CPU", 1) // max(self.resources.num_cpus, 1e-9))
        if self._num_gpus > 0:
            n = min(n, int(res.get("GPU", 0) // self._num_gpus))
        if self.resources.memory_gb and res.get("memory"):
            n = min(n, int(res["memory"] // (self.resources.memory_gb * 2**30)))
        return max(n, 1)

    @property
    def in_flight(self) -> list[int]:
        return [tid for tid, _ in self._refs.values()]

    def submit(self, trial_id: int, params: dict[str, Any], seed: int) -> None:
        opts: dict[str, Any] = {"num_cpus": self.resources.num_cpus, "num_gpus": self._num_gpus}
        if self.resources.memory_gb:
            opts["memory"] = int(self.resources.memory_gb * 2**30)
        extra: dict[str, Any] = {"num_threads": max(int(self.resources.num_cpus), 1)}
        if self._curve_store:
            extra[CURVE_STORE_KEY] = self._curve_store
            extra[CURVE_INTERVAL_KEY] = self._curve_interval_s
        ref = _trial_task.options(**opts).remote(
            self.entrypoint, params, trial_id, seed, self.device, extra
        )
        self._refs[ref] = (trial_id, time.monotonic())

    def wait(self, timeout: float = 1.0) -> list[TrialOutcome]:
        """Outcomes of the trials that finished (or timed out) within `timeout` seconds."""
        out = self._expire_timeouts()
        if not self._refs:
            return out
        ready, _ = ray.wait(list(self._refs), num_returns=len(self._refs), timeout=timeout)
        for ref in ready:
            trial_id, _ = self._refs.pop(ref)
            out.append(self._collect(ref, trial_id))
        return out

    def _collect(self, ref: Any, trial_id: int) -> TrialOutcome:
        try:
            d = ray.get(ref)
        except RayError as exc:
            status, reason = classify_ray_error(exc)
            return TrialOutcome(
                trial_id, status, error=f"{type(exc).__name__}: {exc}"[:4000], reason=reason
            )
        return TrialOutcome(
            trial_id=trial_id,
            status=d["status"],
            loss=d.get("loss"),
            cost=d.get("cost"),
            seconds=d.get("seconds"),
            error=d.get("error"),
            reason=d.get("reason"),
            worker=d.get("worker"),
            metrics=d.get("metrics") or {},
            curve=d.get("curve") or [],
            branches=d.get("branches") or [],
        )

    def _expire_timeouts(self) -> list[TrialOutcome]:
        limit = self.resources.timeout_s
        if not limit:
            return []
        now = time.monotonic()
        out = []
        for ref, (trial_id, t0) in list(self._refs.items()):
            if now - t0 > limit:
                ray.cancel(ref, force=True)
                del self._refs[ref]
                out.append(
                    TrialOutcome(
                        trial_id, "infra", error=f"timed out after {limit:.0f} s", reason="timeout"
                    )
                )
        return out

    def cancel(self, trial_id: int) -> bool:
        """Stop one in-flight trial without collecting an outcome (its lease was lost: another
        driver runs it now, or the sweep was cancelled). False when it was not in flight."""
        for ref, (tid, _) in list(self._refs.items()):
            if tid == trial_id:
                ray.cancel(ref, force=True)
                del self._refs[ref]
                return True
        return False

    def stop_if_running(self, trial_id: int) -> bool:
        """Stop an in-flight trial that is still running (early stopping); False when it is
        not in flight or has already returned, whose result the next `poll` collects: a trial
        that finished while the pruner weighed it keeps its result (seen under load: a trial
        that had streamed all its points was recorded as pruned)."""
        for ref, (tid, _) in list(self._refs.items()):
            if tid == trial_id:
                ready, _ = ray.wait([ref], timeout=0)
                if ready:
                    return False
                ray.cancel(ref, force=True)
                del self._refs[ref]
                return True
        return False

    def cancel_all(self) -> list[int]:
        """Cancel every in-flight task; returns their trial ids."""
        ids = []
        for ref, (trial_id, _) in list(self._refs.items()):
            ray.cancel(ref, force=True)
            ids.append(trial_id)
        self._refs.clear()
        return ids
