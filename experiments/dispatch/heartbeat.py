"""The driver's heartbeat: a thread that renews the leases of the trials this driver runs.

Why the driver renews, not the worker: the lease answers "is someone still going to record this
trial's result?", and only the driver records results. Ray ties a task's life to its driver
(when a driver dies, Ray kills the tasks it submitted), and a worker that dies is reported to the
driver as WorkerCrashedError, which becomes a retry at once. So the one failure a lease must
catch is the driver's own death, and a driver-side heartbeat catches exactly that. It also keeps
workers free of database credentials and connections (hundreds of trials would otherwise mean
hundreds of PostgreSQL connections, and a SQLite file is not reachable from other nodes).

A thread, not the sweep loop, renews: the loop may spend seconds fitting the optimizer, and a
lease must not lapse while the driver is merely busy.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterable

from experiments.store.repository import Store

log = logging.getLogger(__name__)

LEASE_ENV = "CARBS_LEASE_SECONDS"
DEFAULT_LEASE_S = 30.0


def default_lease_s() -> float:
    """Lease length: $CARBS_LEASE_SECONDS or 30 s. A dead driver's trials rerun after this."""
    return float(os.environ.get(LEASE_ENV) or DEFAULT_LEASE_S)


def driver_id() -> str:
    """A name unique to this driver process (host, pid and a random tag against pid reuse)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaseKeeper:
    """Renews `owner`'s leases on the trial ids it is told about, every `lease_s / 3` seconds.

    Trials whose lease could not be renewed (reclaimed by another driver after this one stalled,
    finished by a late duplicate, cancelled) are collected in `take_lost()` so the loop can stop
    running them.
    """

    def __init__(self, store: Store, owner: str, lease_s: float) -> None:
        self.store = store
        self.owner = owner
        self.lease_s = lease_s
        self.interval = max(lease_s / 3.0, 0.05)
        self._ids: set[int] = set()
        self._lost: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.renewals = 0
        self.failures = 0

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=f"lease-{self.owner}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing. The ids are forgotten, so even a renewal still stuck in a retry when
        the database comes back is the last: a stopped keeper never keeps a lease alive."""
        self._stop.set()
        self.clear()
        if self._thread is not None:
            self._thread.join(timeout=max(self.interval, 1.0) + 1.0)
        self._thread = None

    def add(self, trial_id: int) -> None:
        with self._lock:
            self._ids.add(trial_id)

    def discard(self, trial_id: int) -> None:
        with self._lock:
            self._ids.discard(trial_id)
            self._lost.discard(trial_id)

    def clear(self) -> None:
        with self._lock:
            self._ids.clear()
            self._lost.clear()

    @property
    def held(self) -> set[int]:
        with self._lock:
            return set(self._ids)

    def take_lost(self) -> set[int]:
        """Trial ids whose lease this driver no longer holds (each reported once)."""
        with self._lock:
            lost, self._lost = self._lost, set()
            self._ids -= lost
            return lost

    def renew_now(self) -> None:
        """One renewal round (the thread calls this; tests may too)."""
        ids = self.held
        if not ids or self._stop.is_set():
            return
        try:
            kept = self.store.renew_leases(self.owner, ids, self.lease_s)
        except Exception as exc:  # noqa: BLE001 - a blip must not kill the heartbeat; try again next tick
            self.failures += 1
            log.warning("lease renewal failed (%s); retrying in %.1f s", exc, self.interval)
            return
        self.renewals += 1
        lost = ids - kept
        if lost:
            with self._lock:
                self._lost |= lost & self._ids

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.renew_now()

    def __enter__(self) -> LeaseKeeper:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def update(self, ids: Iterable[int]) -> None:
        with self._lock:
            self._ids = set(ids)
