"""Retry store calls through database blips: a PostgreSQL restart, a dropped connection, or
SQLite's "database is locked" when several processes write one file.

Why a retry around whole units of work: every `Store` method is one transaction that is safe to
run again (results are written once, claims and requeues are conditional updates, trial creation
is keyed by suggestion id), so the simplest correct recovery is to roll back and run it again.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_RETRY_S = 60.0

# Message fragments of errors that go away by themselves (lock contention, server restarts).
_TRANSIENT_TEXT = (
    "database is locked",
    "database table is locked",
    "server closed the connection",
    "terminating connection",
    "connection refused",
    "could not connect",
    "connection failed",
    "the database system is",
    "connection is closed",
    "connection has been closed",
    "consuming input failed",
    "no connection to the server",
    "connection timeout",
    "connection reset",
    "broken pipe",
)
# Fragments that mean a retry cannot help, though the driver words them like a connection
# failure ("connection failed: could not translate host name"): fail at once, saying which.
_PERMANENT_TEXT = (
    "could not translate host name",
    "name or service not known",
    "nodename nor servname",
    "temporary failure in name resolution",
    "password authentication failed",
    "no password supplied",
    "does not exist",
    "file is not a database",
    "malformed",
    "unable to open database file",
)
# PostgreSQL SQLSTATE classes that are safe to retry: connection exceptions, operator
# intervention (shutdown, restart), and transaction rollbacks (deadlock, serialization).
_TRANSIENT_SQLSTATE = ("08", "57P", "40")


def is_transient(exc: BaseException) -> bool:
    """True for errors a retry of the same unit of work can fix."""
    orig = getattr(exc, "orig", None)
    if any(f in str(orig if orig is not None else exc).lower() for f in _PERMANENT_TEXT):
        return False
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate:
        return str(sqlstate).startswith(_TRANSIENT_SQLSTATE)
    text = str(orig if orig is not None else exc).lower()
    return any(fragment in text for fragment in _TRANSIENT_TEXT)


def call_with_retry(
    fn: Callable[[], R],
    *,
    retry_s: float = DEFAULT_RETRY_S,
    what: str = "store call",
    level: int = logging.WARNING,
) -> R:
    """Run `fn`, retrying transient database errors with backoff for up to `retry_s` seconds;
    each retry is logged at `level`."""
    deadline = time.monotonic() + retry_s
    delay = 0.05
    attempt = 0
    while True:
        try:
            return fn()
        except Exception as exc:
            attempt += 1
            if not is_transient(exc) or time.monotonic() + delay > deadline:
                raise
            log.log(
                level,
                "%s failed (%s: %s); retry %d in %.2f s",
                what,
                type(exc).__name__,
                str(exc).splitlines()[0][:200],
                attempt,
                delay,
            )
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def retrying(method: Callable[P, R]) -> Callable[P, R]:
    """Decorate a `Store` method: transient errors are retried for `self.retry_s` seconds."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        self: Any = args[0]
        return call_with_retry(
            lambda: method(*args, **kwargs),
            retry_s=float(getattr(self, "retry_s", DEFAULT_RETRY_S)),
            what=f"Store.{method.__name__}",
        )

    return wrapper
