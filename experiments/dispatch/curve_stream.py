"""A running trial's learning curve, written to the store while it trains.

Why: a curve that reaches the store only with the trial's result leaves the dashboard blind to
running trials and leaves nothing for early stopping to act on. The worker appends each point
to a buffer (training never waits on the database) and a background thread writes what is new
every `interval_s`, so points are visible within seconds. Writes are idempotent (a step already
stored is skipped), the attempt's first write clears points an earlier attempt of the same trial
left (a retried trial trains from step 0), and a store that is down costs only those points,
never the trial: the result still carries the full curve, which the recorder stores.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 2.0
CLOSE_WAIT_S = 10.0  # the last write may take this long before the worker returns anyway


def absolute_store_url(url: str) -> str:
    """`url` with a relative SQLite path made absolute: a Ray worker's working directory need
    not be the driver's."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return url
    if parsed.database == ":memory:" or parsed.database.startswith("file:"):
        return url
    path = Path(parsed.database)
    if path.is_absolute():
        return url
    return parsed.set(database=str(path.resolve())).render_as_string(hide_password=False)


class CurveStream:
    """`report` for a trial: `stream(point)` buffers, a thread writes every `interval_s`."""

    def __init__(self, store_url: str, trial_id: int, interval_s: float = DEFAULT_INTERVAL_S):
        self.store_url = store_url
        self.trial_id = trial_id
        self.interval_s = interval_s
        self.written = 0  # points stored so far
        self.failures = 0  # writes that failed (the points are retried at the next write)
        self._points: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._store: Any = None
        self._cleared = False
        self._thread = threading.Thread(target=self._run, name=f"curve-{trial_id}", daemon=True)
        self._thread.start()

    def __call__(self, point: dict[str, Any]) -> None:
        with self._lock:
            self._points.append(dict(point))

    def close(self) -> None:
        """Write what is left and stop; waits at most `CLOSE_WAIT_S`."""
        self._closing.set()
        self._wake.set()
        self._thread.join(CLOSE_WAIT_S)
        if self._store is not None:
            try:
                self._store.dispose()
            except Exception:  # noqa: BLE001 - closing a connection pool must not fail a trial
                pass

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval_s)
            self._wake.clear()
            self._write()
            if self._closing.is_set():
                return

    def _write(self) -> None:
        with self._lock:
            new = self._points[self.written :]
        if not new:  # a workload that reports nothing never opens the store
            return
        try:
            store = self._open()
            if not self._cleared:
                store.clear_curve(self.trial_id)
                self._cleared = True
            if new:
                store.add_curve_points(self.trial_id, new)
                self.written += len(new)
        except Exception as exc:  # noqa: BLE001 - the store being down must not fail training
            self.failures += 1
            if self.failures == 1:
                log.warning("trial %s: curve points not written yet (%s)", self.trial_id, exc)

    def _open(self) -> Any:
        if self._store is None:
            from experiments.store.repository import Store  # the worker pays for it only here

            # short retries: a blip costs a few points' delay, never a stalled trial
            self._store = Store(self.store_url, retry_s=5.0, create=False)
        return self._store
