"""Sub-commands of `carbs` that operate on running sweeps (resume, cancel ...).

`experiments.cli` calls `register` with its sub-parsers; each command added here sets `func`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the execution-control sub-commands to the `carbs` parser."""
    resume = sub.add_parser(
        "resume",
        help="continue a sweep from its stored trials (same as run; safe after the driver was "
        "killed, and next to a driver that still runs it)",
    )
    resume.add_argument("spec", help="sweep definition (YAML) of the sweep to resume")
    resume.add_argument(
        "--address", default=os.environ.get("RAY_ADDRESS"), help="existing Ray cluster"
    )
    resume.add_argument("--storage", help="override the spec's storage URL")
    resume.add_argument(
        "--out",
        default="runs",
        help="folder for the plots, tables and exports (a sub-folder per sweep; default: runs)",
    )
    resume.add_argument(
        "--no-progress", action="store_true", help="plain log lines instead of a live panel"
    )
    resume.set_defaults(func=_resume)

    cancel = sub.add_parser(
        "cancel", help="stop a sweep: its drivers cancel in-flight trials and start no more"
    )
    cancel.add_argument("sweep", help="name of the sweep")
    cancel.add_argument(
        "--storage", help="SQLAlchemy URL (default: $CARBS_STORAGE or sqlite:///carbs.db)"
    )
    cancel.add_argument("--spec", help="read the storage URL from this sweep file")
    cancel.add_argument(
        "--wait",
        type=float,
        default=30.0,
        help="seconds to wait for running drivers to confirm (0: just ask)",
    )
    cancel.set_defaults(func=_cancel)


def _resume(args: argparse.Namespace) -> int:
    from experiments.cli import cmd_run

    return cmd_run(args)


def _cancel(args: argparse.Namespace) -> int:
    from experiments.cli import _storage
    from experiments.store.repository import SweepStatus
    from experiments.store.startup import open_store

    store = open_store(_storage(args))  # cancelling in a store that does not exist creates none
    sweep = store.require_sweep(args.sweep)
    if not store.request_cancel(args.sweep):
        print(f"sweep {args.sweep!r} is already {sweep.status}; nothing to cancel")
        return 0
    if store.live_leases(sweep.id) == 0:
        # no driver holds a running trial: carry the cancel out here (a driver that is alive
        # but between trials sees "cancelled" on its next iteration and stops as well)
        n = store.finish_cancel(sweep.id)
        print(f"sweep {args.sweep!r} cancelled ({n} unfinished trial(s) cancelled)")
        return 0
    print(f"sweep {args.sweep!r}: cancel requested; waiting for its driver(s)", flush=True)
    deadline = time.monotonic() + max(args.wait, 0.0)
    while time.monotonic() < deadline:
        if store.sweep_status(sweep.id) == SweepStatus.CANCELLED:
            print(f"sweep {args.sweep!r} cancelled")
            return 0
        if store.live_leases(sweep.id) == 0:
            n = store.finish_cancel(sweep.id)
            print(f"sweep {args.sweep!r} cancelled ({n} unfinished trial(s) cancelled)")
            return 0
        time.sleep(0.5)
    if args.wait > 0:
        print(
            f"sweep {args.sweep!r}: still cancelling; its drivers stop at their next step, or "
            "their leases expire",
            file=sys.stderr,
        )
    return 0
