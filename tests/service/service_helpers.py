"""Helpers of the service tests: a real server on a free localhost port (uvicorn in a thread),
tokens ready, and toy sweeps stored without Ray.

Why a thread and not a subprocess: the server shares the test session's local Ray (starting a
second cluster costs seconds and CPU), and stopping it runs the app's real shutdown path.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from experiments.service.auth import create_token
from experiments.service.context import ServiceSettings
from experiments.service.local import LocalService, free_port
from experiments.store.repository import Store
from experiments.store.trial_result import TrialResult

TOY_SPEC = Path(__file__).resolve().parents[2] / "experiments" / "sweeps" / "toy_chinchilla.yaml"

__all__ = ["LiveServer", "LocalService", "free_port", "seed_sweep", "start_server", "toy_spec"]


@dataclass
class LiveServer:
    url: str
    storage: str
    tokens: dict[str, str]
    app: object

    def client(self, user: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60.0)

    @property
    def ctx(self):  # type: ignore[no-untyped-def]
        return self.app.state.ctx  # type: ignore[attr-defined]


def start_server(storage: str, tmp: Path, **settings: object) -> tuple[LocalService, LiveServer]:
    """Tokens for alice and bob, then a started LocalService over `storage`."""
    store = Store(storage)  # migrate and create the users before the server starts
    tokens = {
        "alice": create_token(store.session, "alice"),
        "bob": create_token(store.session, "bob"),
    }
    store.dispose()
    svc = LocalService(
        ServiceSettings(storage=storage, cache_dir=tmp / "cache", fit_bootstrap=20, **settings)  # type: ignore[arg-type]
    ).start()
    return svc, LiveServer(svc.url, storage, tokens, svc.app)


def toy_spec(name: str, max_trials: int = 12, parallel: int = 2, optimizer: str = "random") -> str:
    """The toy Chinchilla sweep under another name and a smaller budget. Random search by
    default: these tests are about the service, and it keeps each suggestion instant."""
    import yaml

    data = yaml.safe_load(TOY_SPEC.read_text())
    data["name"] = name
    data["budget"] = {"max_trials": max_trials, "parallel_trials": parallel}
    data["optimizer"] = {"name": optimizer}
    return yaml.safe_dump(data, sort_keys=False)


def wait_for(predicate, timeout: float = 60.0, every: float = 0.2):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout} s")


def seed_sweep(storage: str, name: str, owner: str | None, n: int = 12) -> None:
    """Store a finished toy sweep without Ray: real toy-objective losses on a small grid, the
    configs that diverge as failed trials, and learning curves from the toy law at partial
    token counts."""
    import itertools

    from carbs.errors import ConfigFailure
    from experiments.spec import parse_spec
    from experiments.store.models import TrialStatus
    from experiments.toy_objectives import chinchilla_toy

    text = toy_spec(name, max_trials=max(n, 1))
    spec = parse_spec(text)
    store = Store(storage)
    sweep, _ = store.get_or_create_sweep(name, spec.model_dump(mode="json"), text, owner=owner)
    grid = list(itertools.product([2e6, 8e6, 3e7], [3e7, 2e8], [1e-3, 4e-3, 2.5e-2]))[:n]
    trials = store.create_trials(
        sweep.id,
        [({"n_params": a, "tokens": b, "learning_rate": c}, None) for a, b, c in grid],
    )
    for t in trials:
        try:
            out = chinchilla_toy(t.params)
        except ConfigFailure as exc:
            store.finish_trial(
                t.id,
                TrialResult(
                    TrialStatus.FAILED,
                    cost_flops=6 * t.params["n_params"] * t.params["tokens"],
                    error=str(exc),
                    failure_kind="config",
                    failure_reason=exc.reason,
                ),
            )
            continue
        curve = []
        for step, frac in enumerate((0.25, 0.5, 1.0), start=1):
            part = chinchilla_toy({**t.params, "tokens": t.params["tokens"] * frac})
            curve.append(
                {"step": step, "tokens": t.params["tokens"] * frac, "val_loss": part["loss"]}
            )
        store.add_curve_points(t.id, curve)
        store.finish_trial(
            t.id,
            TrialResult(
                TrialStatus.SUCCEEDED, loss=out["loss"], cost_flops=out["cost"], cost_seconds=0.01
            ),
        )
    store.set_sweep_status(sweep.id, "finished")
    store.dispose()
