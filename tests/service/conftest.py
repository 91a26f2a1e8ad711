"""Fixtures of the service tests: a live server without a scheduler, and one that runs sweeps."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from service_helpers import LiveServer, start_server


@pytest.fixture
def live_server(store_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A server with its scheduler off: for API tests that need no Ray."""
    th, srv = start_server(store_url, tmp_path, run_scheduler=False)
    try:
        yield srv
    finally:
        th.stop()


@pytest.fixture
def running_server(ray_local: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A server whose scheduler runs submitted sweeps on the session's local Ray (SQLite)."""
    th, srv = start_server(
        f"sqlite:///{tmp_path / 'service.db'}", tmp_path, max_running=2, ray_address=ray_local
    )
    try:
        yield srv
    finally:
        th.stop()
