"""Shared fixtures: store URLs for SQLite and PostgreSQL, and one real local Ray per session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

POSTGRES_ENV = "CARBS_TEST_POSTGRES_URL"


def postgres_url() -> str | None:
    return os.environ.get(POSTGRES_ENV) or None


def _fresh_postgres_schema(base_url: str) -> Iterator[str]:
    """A private schema per test, dropped afterwards, so tests never see each other's rows."""
    from sqlalchemy import create_engine, text

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """Each store test runs on a fresh SQLite file and on a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    base = postgres_url()
    if base is None:
        pytest.skip(
            f"PostgreSQL tests need {POSTGRES_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)"
        )
    yield from _fresh_postgres_schema(base)


@pytest.fixture(scope="session")
def ray_local() -> Iterator[str]:
    """One real local Ray cluster for the whole test session (starting one takes seconds);
    yields its address, for processes (the service's sweep drivers) that connect to it."""
    import ray

    from experiments.dispatch.ray_dispatcher import ensure_ray

    ensure_ray(None, num_cpus=2)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
