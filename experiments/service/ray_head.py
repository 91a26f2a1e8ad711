"""The service's own local Ray: a small keeper process that starts Ray, reports its address and
holds it up, and the service-side handle that starts, watches and stops that process.

Why a process of its own: Ray ties the processes it starts (GCS, raylet) to the *thread* that
called `ray.init` (Linux `PR_SET_PDEATHSIG`), so a cluster started from a sweep thread died with
that thread and, 60 s later, Ray's core worker terminated the whole service ("Failed to connect
to GCS within 60 seconds"). And a process connected to a Ray that dies is terminated the same
way. So the service never connects to Ray itself: the keeper owns the local cluster from its
main thread, sweep drivers run in child processes that connect by address, and when the keeper
reports Ray gone the scheduler starts a new one and restarts the drivers; the API stays up.

The keeper stops Ray and exits when its stdin closes (the service stopped, even by SIGKILL), on
SIGTERM, or as soon as Ray's GCS or raylet process is gone.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

ADDRESS_PREFIX = "@carbs-ray "
RAY_PROCESSES = ("gcs_server", "raylet")


# --- the keeper (runs as `python -m experiments.service.ray_head`) -----------------------------
def _ray_children_alive() -> bool:
    import psutil

    names = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                names.add(child.name())
        except psutil.Error:
            continue
    return all(any(want in n for n in names) for want in RAY_PROCESSES)


def keeper_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="hold a local Ray cluster for carbs serve")
    parser.add_argument("--num-cpus", type=int, default=None)
    args = parser.parse_args(argv)
    import ray

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ray.init(
        num_cpus=args.num_cpus,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # ray.init installs its own
    address = ray.get_runtime_context().gcs_address
    # ray.init may switch on token authentication in this process's environment; drivers that
    # connect need the same settings (the token itself is in a file Ray reads)
    auth = {k: v for k, v in os.environ.items() if k.startswith("RAY_AUTH")}
    print(ADDRESS_PREFIX + json.dumps({"address": address, "env": auth}), flush=True)

    def watch_stdin() -> None:
        sys.stdin.read()  # returns at EOF: the service is gone
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    code = 0
    while not stop.wait(1.0):
        if not _ray_children_alive():
            print(
                "ray_head: a Ray process died; exiting so the service starts a new Ray",
                file=sys.stderr,
                flush=True,
            )
            code = 1
            break
    ray.shutdown()
    return code


# --- the service's handle ---------------------------------------------------------------------
class RayHeadError(RuntimeError):
    """The keeper did not start Ray, or did not say where it is."""


class RayHead:
    """Start the keeper, learn the address, tell whether it still runs, stop it."""

    def __init__(self, log_path: Path, num_cpus: int | None = None, start_timeout: float = 90.0):
        self.log_path = log_path
        self.num_cpus = num_cpus
        self.start_timeout = start_timeout
        self.address: str | None = None
        self.env: dict[str, str] = {}  # what a driver needs in its environment to connect
        self.starts = 0
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> str:
        """Start a fresh local Ray; returns its GCS address."""
        self.stop()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "experiments.service.ray_head"]
        if self.num_cpus:
            cmd += ["--num-cpus", str(self.num_cpus)]
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # a new cluster
        env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        with self.log_path.open("a") as log:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=env,
                start_new_session=True,  # a Ctrl-C of the service is handled by the service
            )
        self.starts += 1
        self.address = self._read_address()
        return self.address

    def _read_address(self) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        found: list[dict[str, Any]] = []

        def read() -> None:
            assert self._proc is not None and self._proc.stdout is not None
            for line in self._proc.stdout:
                if line.startswith(ADDRESS_PREFIX):
                    found.append(json.loads(line[len(ADDRESS_PREFIX) :]))
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(self.start_timeout)
        if not found:
            self.stop()
            raise RayHeadError(
                f"the local Ray did not start within {self.start_timeout:.0f} s; see {self.log_path}"
            )
        self.env = {str(k): str(v) for k, v in (found[0].get("env") or {}).items()}
        return str(found[0]["address"])

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def stop(self, timeout: float = 20.0) -> None:
        """Close the keeper's stdin (it stops Ray and exits); SIGTERM, then SIGKILL, if slow."""
        proc, self._proc, self.address = self._proc, None, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()
        except OSError:
            pass
        for sig, wait in ((None, timeout), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            if sig is not None:
                try:
                    proc.send_signal(sig)
                except ProcessLookupError:
                    break
            try:
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        if proc.stdout is not None:
            proc.stdout.close()


if __name__ == "__main__":
    sys.exit(keeper_main())
