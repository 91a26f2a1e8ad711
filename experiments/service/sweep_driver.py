"""One submitted sweep's driver, as a child process of `carbs serve`: the same resumable loop as
`carbs run`, reporting to the service through tagged JSON lines on stdout.

Why a child process: a driver is a Ray client, and Ray terminates a client process whose cluster
went away; as a child, only the driver goes, and the scheduler restarts it. It also keeps the
workload's cost function, the optimizer's GP fits and their threads out of the process that
answers HTTP. Before anything runs the stored spec is checked again against the service's
entry-point allow-list (passed by the scheduler), so a row written some other way cannot make
this process import a callable the operator did not allow.

Lines: `@carbs {"kind": "driver" | "progress" | "error" | "done", ...}`. Exit codes: 0 the loop
ended (finished, cancelled, or stopped by the service: sweep back to `queued`), 2 the sweep
cannot run as defined (permanent), 4 anything else (the scheduler retries with backoff).
The store URL comes in the environment (`CARBS_DRIVER_STORAGE`), never on the command line,
where `ps` would show its password.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import threading
from typing import Any

LINE_PREFIX = "@carbs "
STORAGE_ENV = "CARBS_DRIVER_STORAGE"
EXIT_OK, EXIT_PERMANENT, EXIT_RETRY = 0, 2, 4


def emit(kind: str, **fields: Any) -> None:
    print(LINE_PREFIX + json.dumps({"kind": kind, **fields}, default=str), flush=True)


class JsonProgress:
    """The runner's progress sink: each update as a `progress` line."""

    def update(self, state: Any, event: str | None = None) -> None:
        emit("progress", state=dataclasses.asdict(state), event=event)

    def close(self) -> None:
        return None


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="run one sweep for carbs serve (internal)")
    p.add_argument("--sweep", required=True)
    p.add_argument("--address", required=True, help="Ray cluster address")
    p.add_argument("--allow", action="append", default=[], help="allowed entry point")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        return _drive(args)
    except Exception as exc:  # noqa: BLE001 - reported to the scheduler, which decides
        from carbs.errors import SpecError
        from experiments.entrypoints import EntryPointRefused

        permanent = isinstance(exc, SpecError | EntryPointRefused)
        emit("error", message=f"{type(exc).__name__}: {exc}", permanent=permanent)
        return EXIT_PERMANENT if permanent else EXIT_RETRY


def _drive(args: argparse.Namespace) -> int:
    import torch

    from experiments.dispatch import RayDispatcher, TaskResources
    from experiments.entrypoints import EntryPointPolicy
    from experiments.runner import RunnerOptions, SweepRunner
    from experiments.spec import check_entrypoints, stored_spec
    from experiments.store.repository import Store
    from experiments.store.sweep_status import SweepStatus

    torch.set_num_threads(1)  # the driver fits small GPs; the trials get the cores
    store = Store(os.environ[STORAGE_ENV])
    sweep = store.require_sweep(args.sweep)
    spec = stored_spec(sweep.spec, sweep.name).model_copy(update={"storage": store.url})
    check_entrypoints(spec, EntryPointPolicy.allow_only(args.allow), f"sweep {sweep.name!r}")
    w = spec.workload
    dispatcher = RayDispatcher(
        w.entrypoint,
        TaskResources(w.num_cpus, w.num_gpus, w.memory_gb, w.timeout_s),
        address=args.address,
    )
    dispatcher.start()  # connects to Ray from the main thread
    runner = SweepRunner(
        spec, sweep.spec_yaml, store, dispatcher, JsonProgress(), RunnerOptions(owner=sweep.owner)
    )
    stop_asked = threading.Event()

    def stop(*_: object) -> None:
        stop_asked.set()
        runner.request_stop()

    signal.signal(signal.SIGTERM, stop)  # after Ray's own handler: ours requeues cleanly
    signal.signal(signal.SIGINT, stop)
    threading.Thread(target=_stop_at_eof, args=(stop,), daemon=True).start()
    emit("driver", driver=runner.driver)
    summary = runner.run()
    if summary.interrupted and stop_asked.is_set():
        # stopped by the service: queued again, so its next start resumes the sweep
        store.transition_sweep(sweep.id, "queued", unless=SweepStatus.CANCELLING)
    emit("done", summary=dataclasses.asdict(summary))
    store.dispose()
    return EXIT_OK


def _stop_at_eof(stop: Any) -> None:
    """The service holds our stdin open; EOF means it is gone: stop and hand the trials back."""
    sys.stdin.read()
    stop()


if __name__ == "__main__":
    sys.exit(main())
