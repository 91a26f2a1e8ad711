"""Run a tracker off the sweep loop: a queue of trial ids and one worker thread.

Why a thread: a tracking server that is slow or down (MLflow's HTTP client retries for minutes)
must not hold up dispatching and recording trials. Whatever the worker misses is logged by the
next `sync` (the next `carbs run` of the sweep), since runs are keyed by trial id.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Protocol

from experiments.store.models import Trial, TrialStatus
from experiments.store.repository import Store

log = logging.getLogger(__name__)

# trials worth a tracker run: the observations and the infrastructure failures that gave up
TRACKED = (TrialStatus.SUCCEEDED, TrialStatus.FAILED, TrialStatus.ERROR)
_SYNC = -1  # queue item: log every finished trial the tracker lacks


class Tracker(Protocol):
    def logged_trials(self) -> set[int]:
        """Ids of trials that already have a complete run."""
        ...

    def log_trial(self, trial: Trial) -> None:
        """One finished trial (with its curve) as one run."""
        ...


class BackgroundTracker:
    """Hands finished trials to a tracker from a worker thread; every error is logged, none
    raised. `make` builds the tracker in the worker, so connecting does not block either."""

    def __init__(self, make: Callable[[], Tracker], store: Store, sweep_name: str) -> None:
        self._make = make
        self.store = store
        self.sweep_name = sweep_name
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="carbs-tracker", daemon=True)
        self.tracker: Tracker | None = None
        self.logged: set[int] = set()
        self.errors = 0

    def start(self) -> BackgroundTracker:
        self._queue.put(_SYNC)
        self._thread.start()
        return self

    def trial_finished(self, trial_id: int) -> None:
        """Queue a trial whose result the store now holds (returns at once)."""
        self._queue.put(trial_id)

    def close(self, timeout: float = 30.0) -> None:
        """Log what is queued (up to `timeout` seconds), then stop the worker."""
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning(
                "tracker: still busy after %.0f s; the next run of sweep %s logs the rest",
                timeout,
                self.sweep_name,
            )

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self._handle(item)
            except Exception as exc:  # noqa: BLE001 - tracking must never stop the sweep
                self.errors += 1
                log.warning("tracker: could not log to the tracker: %s", exc)

    def _handle(self, item: int) -> None:
        if self.tracker is None:
            self.tracker = self._make()
            self.logged = self.tracker.logged_trials()
        if item == _SYNC:
            sweep = self.store.require_sweep(self.sweep_name)
            todo = self.store.trials(sweep.id, TRACKED, with_curves=True)
        else:
            trial = self.store.get_trial(item)
            todo = [trial] if trial is not None and trial.status in TRACKED else []
        for t in todo:
            if t.id not in self.logged:
                self.tracker.log_trial(t)
                self.logged.add(t.id)
