"""The headless-Chromium fixture of the dashboard tests (helpers in browser_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import start_chromium


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    driver = start_chromium(tmp_path)
    try:
        yield driver
    finally:
        driver.quit()
