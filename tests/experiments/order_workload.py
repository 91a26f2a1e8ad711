"""A workload whose trials finish in an order set by the test, not by their cost (for
test_reproducible_order): the k-th call to start sleeps `slow_s` when k's parity is
`slow_parity`, so two runs of one spec see their trials finish in different orders."""

from __future__ import annotations

import fcntl
import time
from pathlib import Path
from typing import Any

from experiments.toy_objectives import chinchilla_toy


def _ticket(folder: Path, name: str) -> int:
    """The next number of a counter kept in `folder`, safe across worker processes."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = folder / name
        k = int(path.read_text()) if path.exists() else 0
        path.write_text(str(k + 1))
        return k


def parity_delayed(params: dict[str, Any]) -> dict[str, float]:
    folder = Path(params["order_dir"])
    k = _ticket(folder, "started")
    time.sleep(float(params["slow_s"]) if k % 2 == int(params["slow_parity"]) else 0.0)
    out = chinchilla_toy({n: params[n] for n in ("n_params", "tokens", "learning_rate")})
    with open(folder / "finished", "a") as f:
        f.write(f"{k}\n")
    return out
