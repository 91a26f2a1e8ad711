"""Sub-commands of `carbs` that belong to the service (serve, submit, token ...).

`experiments.cli` calls `register` with its sub-parsers; each command added here sets `func`.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the service's sub-commands to the `carbs` parser."""
