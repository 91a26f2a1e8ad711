"""A workload that breaks on purpose, for fault-injection tests of the execution layer.

`flaky_chinchilla` is `toy_objectives.chinchilla_toy` plus chosen failures, driven by fixed
params of the sweep (`workload.fixed`):

- `chaos_dir`: a folder shared with the test; every attempt appends a line to `journal.jsonl`
  (start / done, trial id, pid) so a test can count executions, and kills leave marker files.
- `kill_every`, `kill_offset`: trials whose id % kill_every == kill_offset kill their own worker
  with SIGKILL halfway through their first attempt (Ray then reports WorkerCrashedError); the
  marker file makes the retry succeed.
- `sleep_s`: how long a trial "trains", so kills of the driver land mid-trial.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from carbs.trial import TrialContext
from experiments.toy_objectives import chinchilla_toy

CHAOS_KEYS = ("chaos_dir", "kill_every", "kill_offset", "sleep_s")


def _journal(folder: Path, **entry: Any) -> None:
    # one short line per write with O_APPEND: atomic on a local file system, across processes
    line = json.dumps({**entry, "pid": os.getpid(), "t": time.time()}) + "\n"
    fd = os.open(folder / "journal.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def should_kill(trial_id: int, kill_every: int, kill_offset: int = 0) -> bool:
    return kill_every > 0 and trial_id % kill_every == kill_offset


def flaky_chinchilla(params: dict[str, Any], ctx: TrialContext) -> dict[str, float]:
    """chinchilla_toy that SIGKILLs its own worker on chosen trials' first attempt."""
    folder = Path(params["chaos_dir"])
    sleep_s = float(params.get("sleep_s", 0.2))
    tid = ctx.trial_id
    _journal(folder, event="start", trial=tid)
    marker = folder / f"killed-{tid}"
    if should_kill(tid, int(params.get("kill_every", 0)), int(params.get("kill_offset", 0))):
        try:
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            pass  # killed once already: this retry runs to the end
        else:
            os.close(fd)
            time.sleep(sleep_s / 2)
            _journal(folder, event="kill", trial=tid)
            os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(sleep_s)
    result = chinchilla_toy({k: v for k, v in params.items() if k not in CHAOS_KEYS})
    _journal(folder, event="done", trial=tid, loss=result["loss"])
    return result


def sleepy(params: dict[str, Any]) -> dict[str, float]:
    """Sleeps `sleep_s` seconds, then succeeds: for timeouts and cancels."""
    time.sleep(float(params.get("sleep_s", 60.0)))
    return {"loss": 1.0, "cost": 1.0}


def raises(params: dict[str, Any]) -> dict[str, float]:
    """Raises the built-in exception named by `error` (MemoryError, ConnectionError ...)."""
    import builtins

    raise getattr(builtins, str(params["error"]))(f"injected {params['error']}")
