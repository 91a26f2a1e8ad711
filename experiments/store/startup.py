"""Opening the store at the start of a command a user typed: a typo fails in seconds, in one line.

Why apart from `Store`: a running sweep's driver (and the service's) must ride out a database
restart, so `Store` retries; a command just typed should not wait out those retries to say that
the host, port, database or login in its URL is wrong.
"""

from __future__ import annotations

from experiments.store.engine import probe
from experiments.store.repository import Store


def open_store(url: str, *, create: bool = False) -> Store:
    """Probe the server once (StoreUnavailable at once if it does not answer), then open the
    store with the usual retries. `create=False`: a missing SQLite file is an error, not a new
    empty store (read-only commands leave nothing behind)."""
    probe(url)
    return Store(url, create=create)
