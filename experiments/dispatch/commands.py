"""Sub-commands of `carbs` that operate on running sweeps (resume, cancel ...).

`experiments.cli` calls `register` with its sub-parsers; each command added here sets `func`.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the execution-control sub-commands to the `carbs` parser."""
    resume = sub.add_parser("resume", help="continue a sweep from its stored trials (same as run)")
    resume.add_argument("spec", help="sweep definition (YAML) of the sweep to resume")
    resume.add_argument("--address", default=None, help="existing Ray cluster")
    resume.add_argument("--storage", help="override the spec's storage URL")
    resume.add_argument("--out", default="runs")
    resume.add_argument("--no-progress", action="store_true")
    resume.set_defaults(func=_resume)


def _resume(args: argparse.Namespace) -> int:
    from experiments.cli import cmd_run

    return cmd_run(args)
