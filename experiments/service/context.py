"""What every request handler needs: settings, the store, the scheduler, auth dependencies.

Why one object on `app.state`: handlers stay plain functions of (context, request data), and tests
build an app over any store URL without module-level globals.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from experiments.entrypoints import SERVICE, EntryPointPolicy
from experiments.service.artifacts import PickCache
from experiments.service.auth import Principal, verify_token
from experiments.service.guard import PRINCIPAL_KEY
from experiments.service.scheduler import Scheduler, SchedulerOptions
from experiments.store.models import Sweep
from experiments.store.repository import Store


@dataclass
class ServiceSettings:
    """How `carbs serve` runs: which database, which Ray, how many sweeps at once, and which
    workload, cost and size entry points submitted specs may name (`entrypoints`)."""

    storage: str
    ray_address: str | None = None  # None: the service starts and owns a local Ray
    max_running: int = 2
    run_scheduler: bool = True
    cache_dir: Path | None = None  # rendered plots and driver logs; a temp folder when None
    fit_bootstrap: int = 200
    entrypoints: EntryPointPolicy = SERVICE
    ray_num_cpus: int | None = None  # CPUs of the local Ray (default: all of the machine's)


@dataclass
class ServiceContext:
    settings: ServiceSettings
    store: Store
    scheduler: Scheduler
    cache_dir: Path
    picks: PickCache
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @classmethod
    def open(cls, settings: ServiceSettings) -> ServiceContext:
        store = Store(settings.storage)
        tmp = None
        if settings.cache_dir is None:
            tmp = tempfile.TemporaryDirectory(prefix="carbs-service-")
            cache = Path(tmp.name)
        else:
            cache = settings.cache_dir
            cache.mkdir(parents=True, exist_ok=True)
        scheduler = Scheduler(
            store,
            SchedulerOptions(
                ray_address=settings.ray_address,
                max_running=settings.max_running,
                entrypoints=settings.entrypoints,
                log_dir=cache / "logs",
                ray_num_cpus=settings.ray_num_cpus,
            ),
        )
        picks = PickCache(settings.entrypoints, settings.fit_bootstrap)
        return cls(settings, store, scheduler, cache, picks, tmp)

    def close(self) -> None:
        self.scheduler.shutdown()
        self.store.dispose()
        if self._tmp is not None:
            self._tmp.cleanup()


def authenticate(app: object, token: str) -> Principal | None:
    """The request guard's token check, against the app's store."""
    ctx: ServiceContext = app.state.ctx  # type: ignore[attr-defined]
    return verify_token(ctx.store.session, token)


def get_ctx(request: Request) -> ServiceContext:
    return request.app.state.ctx


Ctx = Annotated[ServiceContext, Depends(get_ctx)]

bearer = HTTPBearer(
    auto_error=False,
    description="A researcher's API token (`carbs token create USER`), as `Authorization: Bearer <token>`",
)


def require_user(
    request: Request,
    ctx: Ctx,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """401 without a valid token. Reading needs no token; every change does. (The request
    guard has usually verified the token already, before the body was read.)"""
    checked = getattr(request.state, PRINCIPAL_KEY, None)
    if isinstance(checked, Principal):
        return checked
    if creds is None or not creds.credentials:
        raise HTTPException(
            401,
            "this call changes state and needs an API token: send `Authorization: Bearer <token>` "
            "(an admin creates one with `carbs token create USER`)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    who = verify_token(ctx.store.session, creds.credentials)
    if who is None:
        raise HTTPException(
            401,
            "the API token is unknown or revoked; ask an admin for a new one",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return who


User = Annotated[Principal, Depends(require_user)]


def require_sweep(ctx: ServiceContext, name: str) -> Sweep:
    sweep = ctx.store.get_sweep(name)
    if sweep is None:
        raise HTTPException(404, f"no sweep named {name!r}; GET /api/sweeps lists them")
    return sweep


def require_owner(who: Principal, sweep: Sweep) -> None:
    """403 unless the caller owns the sweep (or is an admin)."""
    if who.is_admin or (sweep.owner is not None and sweep.owner == who.name):
        return
    owner = sweep.owner or "nobody (it was run from the command line)"
    raise HTTPException(
        403, f"sweep {sweep.name!r} belongs to {owner}; only its owner may change or cancel it"
    )
