"""Fault injection with real processes: a 50-trial sweep survives workers killed mid-trial, its
driver killed twice with SIGKILL, two drivers finishing it side by side, and (on PostgreSQL) the
database server restarted mid-sweep. Every trial must be accounted for exactly once.

The drivers are real `carbs run` processes that join a Ray cluster by address (started once for
this module); workers are killed from inside the workload (`experiments.dispatch.chaos`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from experiments.rebuild import observation_order
from experiments.store.models import Trial, TrialStatus
from experiments.store.repository import Store

REPO = Path(__file__).resolve().parents[2]
N_TRIALS = 50
KILL_EVERY = 4  # trial ids 1, 5, 9, ... kill their worker once: 13 of 50 (26 %)
LEASE_S = 3
PG_ENV = "CARBS_TEST_POSTGRES_URL"

SPEC = """
name: chaos
seed: 7
storage: {url}
workload:
  kind: callable
  function: experiments.dispatch.chaos:flaky_chinchilla
  fixed: {{chaos_dir: "{chaos_dir}", kill_every: {kill_every}, kill_offset: 1, sleep_s: 0.3}}
search_space:
  n_params:      {{kind: log, min: 1.0e+6, max: 1.0e+8, scales_cost: true}}
  tokens:        {{kind: log, min: 1.0e+7, max: 1.0e+9, scales_cost: true}}
  learning_rate: {{kind: log, min: 1.0e-4, max: 3.0e-2}}
optimizer: {{name: local}}
budget: {{max_trials: {n}, parallel_trials: 2, max_retries: 4}}
target: {{flops: 1.0e+20}}
"""


# --- PostgreSQL: a private schema that survives the server restart, and the restart -------
def _pg_cluster() -> list[str]:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    return ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main"]


def _pg_ready(timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ok = subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432"], capture_output=True)
        if ok.returncode == 0:
            return True
        time.sleep(0.5)
    return False


def _ensure_pg_running() -> None:
    if not _pg_ready(timeout=5):
        subprocess.run([*_pg_cluster(), "start"], capture_output=True)
        assert _pg_ready(), "PostgreSQL did not come back after the restart test"


def restart_postgres() -> float:
    started = time.monotonic()
    subprocess.run([*_pg_cluster(), "restart"], check=True, capture_output=True, timeout=120)
    return time.monotonic() - started


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def chaos_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'chaos.db'}"
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {PG_ENV}")
    if shutil.which("pg_ctlcluster") is None or not os.path.isdir("/etc/postgresql"):
        pytest.skip("the restart test needs the local server's pg_ctlcluster (postgresql-common)")
    from sqlalchemy import create_engine, text

    schema = f"chaos_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, pool_pre_ping=True)  # must outlive the server restart
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        _ensure_pg_running()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# --- a Ray cluster of its own ----------------------------------------------------------------
_CLUSTER = """
import json, os, sys, ray
ray.init(num_cpus={cpus}, include_dashboard=False, log_to_driver=False, configure_logging=False)
auth = {{k: v for k, v in os.environ.items() if k.startswith("RAY_AUTH")}}  # token mode, if on
print(json.dumps([ray.get_runtime_context().gcs_address, auth]), flush=True)
sys.stdin.read()  # lives until the test closes our stdin
"""


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[tuple[str, dict[str, str]]]:
    """A Ray cluster in a helper process, for drivers to join by address. Four CPU slots on any
    machine (the trials sleep), so two drivers of 2 trials each never wait on each other's
    workers; the cluster lives and dies with the helper process. Yields (address, the
    environment a driver needs to join it)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _CLUSTER.format(cpus=4)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        line = proc.stdout.readline().strip() if proc.stdout else ""
        assert line, "the helper Ray cluster did not start"
        address, env = json.loads(line)
        yield address, env
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # anything the cluster left behind
        except ProcessLookupError:
            pass


# --- drivers ------------------------------------------------------------------------------
class Driver:
    """One `carbs run` process in its own session (so stray children can be cleaned up)."""

    def __init__(
        self, spec: Path, cluster: tuple[str, dict[str, str]], log: Path, command: str = "run"
    ) -> None:
        address, ray_env = cluster
        env = {
            **os.environ,
            **ray_env,
            "CARBS_LEASE_SECONDS": str(LEASE_S),
            "PYTHONPATH": str(REPO),
        }
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "experiments.cli", command, str(spec), "--address", address]
            + ["--no-progress", "--out", str(spec.parent / "runs")],
            cwd=REPO,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def sigkill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)

    def tail(self) -> str:
        return "\n".join(self.log.read_text().splitlines()[-30:])


def _wait_for(cond: Callable[[], bool], timeout: float, what: str, drivers: list[Driver]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        for d in drivers:
            if d.proc.poll() is not None and d.proc.returncode != 0:
                pytest.fail(f"driver exited {d.proc.returncode} waiting for {what}:\n{d.tail()}")
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}:\n" + "\n---\n".join(d.tail() for d in drivers))


def _counts(store: Store) -> dict[str, int]:
    sweep = store.get_sweep("chaos")
    return {} if sweep is None else store.status_counts(sweep.id)


def _finished(store: Store) -> int:
    return sum(n for s, n in _counts(store).items() if s in TrialStatus.FINISHED)


def _mid_trial(store: Store, at_least: int) -> Callable[[], bool]:
    """At least `at_least` trials finished and one is running right now."""
    return lambda: _finished(store) >= at_least and _counts(store).get(TrialStatus.RUNNING, 0) > 0


# --- accounting -----------------------------------------------------------------------------
def _journal(chaos_dir: Path) -> list[dict]:
    path = chaos_dir / "journal.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def account(rows: list[Trial], chaos_dir: Path) -> dict[str, int]:
    """Every trial exactly once: the figures the fault tests assert and report."""
    journal = _journal(chaos_dir)
    done: dict[int, list[float]] = {}
    for e in journal:
        if e["event"] == "done":
            done.setdefault(e["trial"], []).append(e["loss"])
    observed = [t for t in rows if t.status in TrialStatus.OBSERVED]
    succeeded = [t for t in rows if t.status == TrialStatus.SUCCEEDED]
    # a stored loss must be the loss of a real execution of that trial
    unbacked = [t.number for t in succeeded if t.loss not in done.get(t.id, [])]
    assert unbacked == [], f"stored losses with no execution behind them: {unbacked}"
    return {
        "trials": len(rows),
        "observed": len(observed),
        "lost": sum(1 for t in rows if t.status not in TrialStatus.OBSERVED),
        "duplicated": (len(rows) - len({t.suggestion_id for t in rows}))
        + (len(rows) - len({t.number for t in rows}))
        + (len(observed) - len({t.suggestion_id for t in observation_order(rows)})),
        "worker_kills": len(list(chaos_dir.glob("killed-*"))),
        "retries": sum(max(t.attempts - 1, 0) for t in rows),
        "re_executions": sum(max(len(v) - 1, 0) for v in done.values()),
        "executions_started": Counter(e["event"] for e in journal)["start"],
    }


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_sweep_survives_worker_kills_driver_kills_and_database_restart(
    ray_cluster: tuple[str, dict[str, str]], chaos_store_url: str, tmp_path: Path
) -> None:
    cluster = ray_cluster
    chaos_dir = tmp_path / "chaos"
    chaos_dir.mkdir()
    spec = tmp_path / "chaos.yaml"
    spec.write_text(
        SPEC.format(url=chaos_store_url, chaos_dir=chaos_dir, kill_every=KILL_EVERY, n=N_TRIALS)
    )
    store = Store(chaos_store_url)
    on_postgres = chaos_store_url.startswith("postgresql")
    drivers: list[Driver] = []
    restart_s = None
    t0 = time.monotonic()
    try:
        # 1. first driver, SIGKILLed mid-trial
        drivers.append(Driver(spec, cluster, tmp_path / "driver1.log"))
        _wait_for(_mid_trial(store, 12), 150, "12 finished trials", drivers[-1:])
        drivers[-1].sigkill()
        # 2. second driver resumes from SQL; PostgreSQL is restarted under it; SIGKILLed too
        drivers.append(Driver(spec, cluster, tmp_path / "driver2.log", command="resume"))
        if on_postgres:
            _wait_for(lambda: _finished(store) >= 18, 150, "18 finished trials", drivers[-1:])
            try:
                restart_s = restart_postgres()
            finally:
                _ensure_pg_running()
        _wait_for(_mid_trial(store, 28), 150, "28 finished trials", drivers[-1:])
        drivers[-1].sigkill()
        # 3. two drivers at once finish the sweep; neither may hand out a trial the other runs
        last = [Driver(spec, cluster, tmp_path / f"driver{i}.log") for i in (3, 4)]
        drivers += last
        for d in last:
            d.proc.wait(timeout=240)
            assert d.proc.returncode == 0, d.tail()
    finally:
        for d in drivers:
            d.cleanup()
    wall = time.monotonic() - t0

    sweep = store.require_sweep("chaos")
    assert sweep.status == "finished"
    figures = account(store.trials(sweep.id), chaos_dir)
    figures.update(driver_kills=2, wall_s=round(wall), pg_restart_s=restart_s)
    print(f"\nfault-injection figures ({chaos_store_url.split(':')[0]}): {json.dumps(figures)}")
    assert figures["trials"] == figures["observed"] == N_TRIALS
    assert figures["lost"] == 0 and figures["duplicated"] == 0
    assert figures["worker_kills"] >= 0.2 * N_TRIALS
    assert figures["retries"] >= figures["worker_kills"]
    # a driver kill redoes at most the trials it had in flight (parallel_trials = 2 each)
    redone = figures["executions_started"] - N_TRIALS - figures["worker_kills"]
    assert 0 <= redone <= 2 * 2


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_preempted_driver_hands_its_trials_back_at_once(
    ray_cluster: tuple[str, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM (preemption) requeues the driver's in-flight trials before it exits, so nobody
    waits for the lease (here 300 s) to run out."""
    url = f"sqlite:///{tmp_path / 'term.db'}"
    spec = tmp_path / "term.yaml"
    text = SPEC.format(url=url, chaos_dir=tmp_path, kill_every=0, n=10)
    spec.write_text(text.replace("sleep_s: 0.3", "sleep_s: 60"))
    store = Store(url)
    monkeypatch.setattr(sys.modules[__name__], "LEASE_S", 300)
    driver = Driver(spec, ray_cluster, tmp_path / "term.log")
    try:
        _wait_for(
            lambda: _counts(store).get(TrialStatus.RUNNING, 0) == 2, 60, "2 running", [driver]
        )
        driver.proc.send_signal(signal.SIGTERM)
        driver.proc.wait(timeout=30)
    finally:
        driver.cleanup()
    rows = store.trials(store.require_sweep("chaos").id)
    assert [t.status for t in rows] == [TrialStatus.PENDING] * 2, driver.tail()
    assert all(t.lease_owner is None for t in rows)
    assert store.require_sweep("chaos").status == "interrupted"
