"""Run submitted sweeps for the service: a small queue, one driver process per running sweep.

Why processes around the ordinary `SweepRunner` (`sweep_driver.py`): the service must run
exactly the loop `carbs run` runs (same resume-from-the-store semantics, leases, cancel
handling), and it must outlive its sweeps and its Ray. A Ray client process is terminated by Ray
when its cluster goes away, so the service process never connects to Ray: each driver is a
child that does, and the local cluster itself is held by a keeper child (`ray_head.py`) that the
scheduler starts, watches and replaces when Ray dies.

The database is the queue: a submitted sweep gets status `queued`, the scheduler starts queued
sweeps while fewer than `max_running` run. A driver that ends badly has its leases expired (its
in-flight trials are requeued by the next driver at once) and its sweep queued again after a
backoff, up to `MAX_RESTARTS` in a row; one that says the sweep cannot run (exit 2) puts it in
`error` with the reason. When the keeper reports Ray gone, every driver is stopped the same way
and a fresh Ray is started. On shutdown the drivers get SIGTERM (in-flight trials requeued, sweep
back to `queued`), so the next start resumes them. A cancel goes through the store
(`Store.request_cancel`), which every driver of the sweep notices within one loop iteration.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from experiments.entrypoints import SERVICE, EntryPointPolicy
from experiments.progress import SweepProgress
from experiments.service.ray_head import RayHead, RayHeadError
from experiments.service.sweep_driver import EXIT_OK, EXIT_PERMANENT, LINE_PREFIX, STORAGE_ENV
from experiments.store.models import Sweep
from experiments.store.repository import Store
from experiments.store.sweep_status import SweepStatus

log = logging.getLogger(__name__)

QUEUED = "queued"
ERROR = "error"
ACTIVE = (QUEUED, SweepStatus.RUNNING, SweepStatus.CANCEL_REQUESTED)
MAX_RESTARTS = 5  # consecutive bad ends of one sweep's driver before it is put in `error`
BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)  # wait before restart n (then the last, repeated)
STOP_GRACE_S = 15.0  # a driver asked to stop that is still running after this is killed


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
    """A running driver process and what it has told us."""

    name: str
    proc: subprocess.Popen[str]
    progress: LogProgress = field(default_factory=LogProgress)
    driver: str | None = None  # the driver's lease owner name, once it says
    error: str | None = None
    permanent: bool = False
    stop_requested: bool = False
    stop_deadline: float = float("inf")  # killed when still running past this (monotonic)
    reader: threading.Thread | None = None


@dataclass(frozen=True)
class SchedulerOptions:
    """How the scheduler runs its drivers. ray_address: an existing Ray cluster (None: the
    scheduler starts and keeps a local one with `ray_num_cpus` CPUs, default all). max_running:
    sweeps run at once. poll_s: how often the queue is looked at. entrypoints: what drivers
    may import. log_dir: driver and Ray logs (None: a folder under $TMPDIR)."""

    ray_address: str | None = None
    max_running: int = 2
    poll_s: float = 1.0
    entrypoints: EntryPointPolicy = SERVICE
    log_dir: Path | None = None
    ray_num_cpus: int | None = None


class Scheduler:
    """Start queued sweeps as driver processes, up to `max_running`; keep Ray up; stop cleanly."""

    def __init__(self, store: Store, options: SchedulerOptions = SchedulerOptions()) -> None:
        self.store = store
        self.ray_address = options.ray_address
        self.max_running = options.max_running
        self.poll_s = options.poll_s
        self.entrypoints = options.entrypoints
        self.log_dir = (
            options.log_dir or Path(os.environ.get("TMPDIR", "/tmp")) / "carbs-service-logs"
        )
        self.ray_head = (
            None
            if options.ray_address
            else RayHead(self.log_dir / "ray_head.log", options.ray_num_cpus)
        )
        self.ray_restarts = 0  # times a dead local Ray was replaced
        self._jobs: dict[str, Job] = {}
        self._errors: dict[str, str] = {}
        self._failures: dict[str, int] = {}
        self._not_before: dict[str, float] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._loop: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Start the queue loop (it also picks up sweeps left `queued` by a previous run)."""
        if self._loop is not None:
            return
        self._loop = threading.Thread(target=self._loop_body, name="carbs-scheduler", daemon=True)
        self._loop.start()

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop every driver (trials requeued, sweep back to `queued`), the loop, and Ray."""
        self._closing.set()
        self._wake.set()
        if self._loop is not None:  # first the loop, so no job starts after the snapshot below
            self._loop.join(timeout)
            self._loop = None
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            self._ask_to_stop(job)
        deadline = time.monotonic() + timeout
        for job in jobs:
            self._wait_or_kill(job, max(deadline - time.monotonic(), 1.0))
            self._finish(job, requeue=True)
        if self.ray_head is not None:
            self.ray_head.stop()

    # --- queries --------------------------------------------------------------------------
    def is_running(self, name: str) -> bool:
        with self._lock:
            return name in self._jobs

    def running(self) -> list[str]:
        with self._lock:
            return sorted(self._jobs)

    def progress(self, name: str) -> dict[str, Any] | None:
        """Live state of a sweep this service runs: last events and running-trial count."""
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

    def ray_status(self) -> dict[str, Any]:
        """Where trials run: an external cluster, or the service's own Ray (alive, restarts)."""
        if self.ray_head is None:
            return {"mode": "external", "address": self.ray_address}
        return {
            "mode": "local",
            "alive": self.ray_head.alive(),
            "starts": self.ray_head.starts,
            "restarts_after_failure": self.ray_restarts,
        }

    # --- commands -------------------------------------------------------------------------
    def enqueue(self, sweep_id: int, name: str) -> None:
        """Mark a stored sweep `queued` and wake the loop."""
        self._errors.pop(name, None)
        self._failures.pop(name, None)
        self._not_before.pop(name, None)
        self.store.set_sweep_status(sweep_id, QUEUED)
        self._wake.set()

    def cancel(self, sweep_id: int, name: str) -> str:
        """Cancel a sweep. Returns "not-found" (no such sweep, or already finished/cancelled),
        "stopping" (its driver here will mark it `cancelled` within a loop iteration) or
        "cancelled" (no driver of this service ran it: the cancel was carried out at once; a
        driver in another process finds its leases gone and stops)."""
        if not self.store.request_cancel(name):
            return "not-found"
        if self.is_running(name):
            return "stopping"
        self.store.finish_cancel(sweep_id)
        return "cancelled"

    def wait_idle(self, name: str, timeout: float) -> bool:
        """Block until `name` no longer runs here (for tests and graceful cancels)."""
        deadline = time.monotonic() + timeout
        while self.is_running(name):
            if time.monotonic() > deadline:
                return False
            self._wake.set()
            time.sleep(0.05)
        return True

    # --- the loop ---------------------------------------------------------------------------
    def _loop_body(self) -> None:
        while not self._closing.is_set():
            try:
                self._supervise_ray()
                self._reap()
                self._start_queued()
            except Exception:  # noqa: BLE001 - a database hiccup must not kill the scheduler
                log.exception("scheduler: one round of supervision failed")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def _supervise_ray(self) -> None:
        """The local Ray died: stop its drivers (they are reaped as failures and restart)."""
        head = self.ray_head
        if head is None or head.address is None or head.alive():
            return
        log.warning("the service's local Ray stopped; stopping its drivers and starting a new Ray")
        head.stop()
        self.ray_restarts += 1
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.error = job.error or "the local Ray stopped under the driver"
            self._ask_to_stop(job)

    def _cluster(self) -> tuple[str, dict[str, str]]:
        """Address of the Ray to run on, and the environment a driver needs to connect."""
        if self.ray_head is None:
            assert self.ray_address is not None
            return self.ray_address, {}
        if not self.ray_head.alive():
            self.ray_head.start()
        assert self.ray_head.address is not None
        return self.ray_head.address, dict(self.ray_head.env)

    def _start_queued(self) -> None:
        ready = self._ready_to_start()
        if not ready:
            return
        try:  # outside the lock: starting a local Ray takes seconds, and queries must not wait
            address, env = self._cluster()
        except RayHeadError as exc:
            log.error("scheduler: %s", exc)
            for n in ready:
                self._not_before[n] = time.monotonic() + BACKOFF_S[-1]
            return
        # Under the lock from the check to registration, so a cancel never races a start
        # (a sweep cancelled in between is started and carries the cancel out at once).
        with self._lock:
            for name in ready:
                if name not in self._jobs and len(self._jobs) < self.max_running:
                    if not self._closing.is_set():
                        self._jobs[name] = self._spawn(name, address, env)

    def _ready_to_start(self) -> list[str]:
        """Queued sweeps this service may start now (free slots, past their backoff)."""
        with self._lock:
            free = self.max_running - len(self._jobs)
            running = set(self._jobs)
        if free <= 0 or self._closing.is_set():
            return []
        with self.store.session() as s:
            queued = list(
                s.scalars(
                    select(Sweep.name)
                    .where(Sweep.status == QUEUED)
                    .order_by(Sweep.updated_at, Sweep.id)
                )
            )
        now = time.monotonic()
        return [n for n in queued if n not in running and self._not_before.get(n, 0.0) <= now][
            :free
        ]

    def _spawn(self, name: str, address: str, env: dict[str, str]) -> Job:
        cmd = [sys.executable, "-m", "experiments.service.sweep_driver", "--sweep", name]
        cmd += ["--address", address]
        for entry in sorted(self.entrypoints.allowed or ()):
            cmd += ["--allow", entry]
        child_env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        child_env.update(env)
        child_env[STORAGE_ENV] = self.store.url
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / f"{name}.log").open("a") as err:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                env=child_env,
                start_new_session=True,  # a Ctrl-C on the service is the service's to handle
            )
        job = Job(name=name, proc=proc)
        job.reader = threading.Thread(
            target=self._read_lines, args=(job,), name=f"carbs-driver-{name}", daemon=True
        )
        job.reader.start()
        log.info("sweep %s: driver process %d started on Ray at %s", name, proc.pid, address)
        return job

    def _read_lines(self, job: Job) -> None:
        assert job.proc.stdout is not None
        for line in job.proc.stdout:
            if not line.startswith(LINE_PREFIX):
                continue
            try:
                msg = json.loads(line[len(LINE_PREFIX) :])
            except json.JSONDecodeError:
                continue
            kind = msg.get("kind")
            if kind == "driver":
                job.driver = msg.get("driver")
            elif kind == "progress":
                state = msg.get("state") or {}
                known = {f for f in SweepProgress.__dataclass_fields__}
                job.progress.update(
                    SweepProgress(**{k: v for k, v in state.items() if k in known}),
                    msg.get("event"),
                )
            elif kind == "error":
                job.error = str(msg.get("message"))
                job.permanent = bool(msg.get("permanent"))
        self._wake.set()

    # --- ends of drivers ----------------------------------------------------------------------
    def _reap(self) -> None:
        with self._lock:
            jobs = list(self._jobs.values())
        now = time.monotonic()
        for job in jobs:  # asked to stop and still there (e.g. blocked on a dead Ray): kill
            if job.proc.poll() is None and now > job.stop_deadline:
                log.warning("sweep %s: driver did not stop when asked; killed", job.name)
                job.stop_deadline = float("inf")
                job.proc.kill()
        ended = [j for j in jobs if j.proc.poll() is not None]
        for job in ended:
            if job.reader is not None:
                job.reader.join(5.0)
            self._finish(job, requeue=False)

    def _finish(self, job: Job, *, requeue: bool) -> None:
        """Account for a driver that exited: the sweep's next state, its leases, backoff."""
        code = job.proc.returncode
        sweep = self.store.get_sweep(job.name)
        if job.driver is not None and code != EXIT_OK:
            self.store.expire_leases(job.driver)
        if sweep is not None:
            self._next_state(job, sweep, code, requeue)
        with self._lock:
            self._jobs.pop(job.name, None)
        for stream in (job.proc.stdin, job.proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        self._wake.set()

    def _next_state(self, job: Job, sweep: Sweep, code: int | None, requeue: bool) -> None:
        name = job.name
        if sweep.status in SweepStatus.CANCELLING:
            if sweep.status == SweepStatus.CANCEL_REQUESTED:
                self.store.finish_cancel(sweep.id)
            return
        if code == EXIT_OK and not job.stop_requested:
            self._failures.pop(name, None)
            return
        if requeue or job.stop_requested:
            self.store.transition_sweep(sweep.id, QUEUED)  # stopped on purpose: resume later
            return
        if code == EXIT_PERMANENT and job.permanent:
            self._fail(sweep, job.error or "the sweep cannot run as defined")
            return
        n = self._failures.get(name, 0) + 1
        self._failures[name] = n
        reason = job.error or f"driver exited with code {code}"
        if n > MAX_RESTARTS:
            self._fail(sweep, f"{reason} ({n} times in a row)")
            return
        log.warning(
            "sweep %s: driver ended badly (%s); restart %d of %d", name, reason, n, MAX_RESTARTS
        )
        self._not_before[name] = time.monotonic() + BACKOFF_S[min(n, len(BACKOFF_S)) - 1]
        self.store.transition_sweep(sweep.id, QUEUED)

    def _fail(self, sweep: Sweep, reason: str) -> None:
        log.error("sweep %s failed in the scheduler: %s", sweep.name, reason)
        self._errors[sweep.name] = reason
        self.store.transition_sweep(sweep.id, ERROR)

    # --- stopping drivers ----------------------------------------------------------------------
    def _ask_to_stop(self, job: Job, grace_s: float = STOP_GRACE_S) -> None:
        job.stop_requested = True
        job.stop_deadline = min(job.stop_deadline, time.monotonic() + grace_s)
        try:
            job.proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass

    def _wait_or_kill(self, job: Job, timeout: float) -> None:
        try:
            job.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("sweep %s: driver did not stop in %.0f s; killed", job.name, timeout)
            job.proc.kill()
            job.proc.wait(10.0)
        if job.reader is not None:
            job.reader.join(5.0)
