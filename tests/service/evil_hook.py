"""A module the attack tests name in specs: importing it, or calling `run`, leaves a mark.

Why a mark on import: the service must refuse an unlisted entry point from its name alone,
so the test can check that this module was never even imported."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

MARK_ENV = "CARBS_TEST_EVIL_MARK"


def _mark(what: str) -> None:
    target = os.environ.get(MARK_ENV)
    if target:
        with Path(target).open("a") as f:
            f.write(what + "\n")


_mark("imported")


def run(params: dict[str, Any], *args: Any) -> Any:
    _mark("called")
    return {"loss": 1.0, "cost": 1.0}
