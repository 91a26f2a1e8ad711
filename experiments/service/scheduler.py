"""Run submitted sweeps in the service process: a small queue, one thread per running sweep.

Why threads around the ordinary `SweepRunner`: the service must run exactly the loop `carbs run`
runs (same resume-from-the-store semantics, leases, cancel handling), only without a terminal.
The database is the queue: a submitted sweep gets status `queued`, the scheduler starts queued
sweeps while fewer than `max_running` run, and on shutdown stops its runners with
`request_stop()` (in-flight trials requeued) and puts their sweeps back to `queued`, so the next
start resumes them. A cancel goes through the store (`Store.request_cancel`), which every driver
of the sweep, here or in another process, notices within one loop iteration.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from experiments.dispatch import RayDispatcher, TaskResources
from experiments.progress import SweepProgress
from experiments.spec import SweepSpec
from experiments.store.models import Sweep
from experiments.store.repository import Store
from experiments.store.sweep_status import SweepStatus

log = logging.getLogger(__name__)

QUEUED = "queued"
ERROR = "error"
ACTIVE = (QUEUED, SweepStatus.RUNNING, SweepStatus.CANCEL_REQUESTED)


class LogProgress:
    """Non-TTY progress sink: one log line per event, and the latest state kept for the API."""

    def __init__(self) -> None:
        self.state: SweepProgress | None = None
        self.events: list[str] = []

    def update(self, state: SweepProgress, event: str | None = None) -> None:
        self.state = state
        if event:
            self.events = (self.events + [event])[-20:]
            log.info("%s | %s", state.line(), event)

    def close(self) -> None:
        return None


@dataclass
class Job:
    name: str
    stop: threading.Event = field(default_factory=threading.Event)  # set on shutdown
    progress: LogProgress = field(default_factory=LogProgress)
    thread: threading.Thread | None = None
    runner: Any = None  # the SweepRunner once built (guarded by the scheduler's lock)


class Scheduler:
    """Start queued sweeps on Ray, up to `max_running` at once; cancel and shut down cleanly."""

    def __init__(
        self,
        store: Store,
        *,
        ray_address: str | None = None,
        max_running: int = 2,
        poll_s: float = 1.0,
        connect_ray: Callable[[str | None], None] | None = None,
    ) -> None:
        self.store = store
        self.ray_address = ray_address
        self.max_running = max_running
        self.poll_s = poll_s
        self._connect_ray = connect_ray
        self._jobs: dict[str, Job] = {}
        self._errors: dict[str, str] = {}
        self._lock = threading.Lock()
        self._ray_lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._loop: threading.Thread | None = None
        self._ray_ready = False
        self._ray_started_here = False

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Start the queue loop (it also picks up sweeps left `queued` by a previous run)."""
        if self._loop is not None:
            return
        self._loop = threading.Thread(target=self._loop_body, name="carbs-scheduler", daemon=True)
        self._loop.start()

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop every running sweep (trials requeued, sweep back to `queued`) and the loop."""
        self._closing.set()
        self._wake.set()
        if self._loop is not None:  # first the loop, so no job starts after the snapshot below
            self._loop.join(timeout)
            self._loop = None
        with self._lock:
            jobs = list(self._jobs.values())
            for job in jobs:
                job.stop.set()
                if job.runner is not None:
                    job.runner.request_stop()
        for job in jobs:
            if job.thread is not None:
                job.thread.join(timeout)
        if self._ray_started_here:
            import ray

            ray.shutdown()
            self._ray_started_here = False
            self._ray_ready = False

    # --- queries --------------------------------------------------------------------------
    def is_running(self, name: str) -> bool:
        with self._lock:
            return name in self._jobs

    def running(self) -> list[str]:
        with self._lock:
            return sorted(self._jobs)

    def progress(self, name: str) -> dict[str, Any] | None:
        """Live state of a sweep this process runs: last events and running-trial count."""
        with self._lock:
            job = self._jobs.get(name)
        if job is None:
            err = self._errors.get(name)
            return {"events": [], "error": err} if err else None
        st = job.progress.state
        return {
            "events": list(job.progress.events),
            "running_trials": st.running if st else 0,
            "error": None,
        }

    # --- commands -------------------------------------------------------------------------
    def enqueue(self, sweep_id: int, name: str) -> None:
        """Mark a stored sweep `queued` and wake the loop."""
        self._errors.pop(name, None)
        self.store.set_sweep_status(sweep_id, QUEUED)
        self._wake.set()

    def cancel(self, sweep_id: int, name: str) -> str:
        """Cancel a sweep. Returns "not-found" (no such sweep, or already finished/cancelled),
        "stopping" (its runner here will mark it `cancelled` within a loop iteration) or
        "cancelled" (nothing of this process ran it: the cancel was carried out at once; a
        driver in another process finds its leases gone and stops)."""
        if not self.store.request_cancel(name):
            return "not-found"
        if self.is_running(name):
            return "stopping"
        self.store.finish_cancel(sweep_id)
        return "cancelled"

    def wait_idle(self, name: str, timeout: float) -> bool:
        """Block until `name` no longer runs here (for tests and graceful cancels)."""
        with self._lock:
            job = self._jobs.get(name)
        if job is None or job.thread is None:
            return True
        job.thread.join(timeout)
        return not job.thread.is_alive()

    # --- internals ------------------------------------------------------------------------
    def _loop_body(self) -> None:
        while not self._closing.is_set():
            try:
                self._start_queued()
            except Exception:  # noqa: BLE001 - a database hiccup must not kill the scheduler
                log.exception("scheduler: could not poll queued sweeps")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def _start_queued(self) -> None:
        # Under the lock from query to registration, so a cancel never races a start.
        with self._lock:
            free = self.max_running - len(self._jobs)
            if free <= 0 or self._closing.is_set():
                return
            with self.store.session() as s:
                queued = list(
                    s.scalars(
                        select(Sweep.name)
                        .where(Sweep.status == QUEUED)
                        .order_by(Sweep.updated_at, Sweep.id)
                    )
                )
            for name in [n for n in queued if n not in self._jobs][:free]:
                job = Job(name=name)
                job.thread = threading.Thread(
                    target=self._run_job, args=(job,), name=f"carbs-sweep-{name}", daemon=True
                )
                self._jobs[name] = job
                job.thread.start()

    def _ensure_ray(self) -> None:
        with self._ray_lock:
            if self._ray_ready:
                return
            import ray

            from experiments.dispatch.ray_dispatcher import ensure_ray

            already = ray.is_initialized()
            (self._connect_ray or ensure_ray)(self.ray_address)
            self._ray_started_here = not already
            self._ray_ready = True

    def _run_job(self, job: Job) -> None:
        from experiments.runner import SweepRunner

        sweep = self.store.get_sweep(job.name)
        try:
            if sweep is None:
                return
            self._ensure_ray()
            spec = SweepSpec.model_validate(sweep.spec).model_copy(
                update={"storage": self.store.url}
            )
            w = spec.workload
            dispatcher = RayDispatcher(
                w.entrypoint,
                TaskResources(w.num_cpus, w.num_gpus, w.memory_gb, w.timeout_s),
                address=self.ray_address,
            )
            dispatcher.start()
            runner = SweepRunner(
                spec, sweep.spec_yaml, self.store, dispatcher, job.progress, owner=sweep.owner
            )
            with self._lock:  # from here on, shutdown reaches the runner itself
                job.runner = runner
                stop_now = job.stop.is_set()
            if not stop_now:
                runner.run()
            if job.stop.is_set():  # shut down: resumed by the next service start
                self.store.transition_sweep(sweep.id, QUEUED)
        except Exception as exc:  # noqa: BLE001 - reported on the sweep, never kills the service
            log.exception("sweep %s failed in the scheduler", job.name)
            self._errors[job.name] = f"{type(exc).__name__}: {exc}"
            if sweep is not None:
                self.store.transition_sweep(sweep.id, ERROR)
        finally:
            with self._lock:
                self._jobs.pop(job.name, None)
            self._wake.set()
