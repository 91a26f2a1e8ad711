"""Engines for any SQLAlchemy URL, with the settings that make concurrent use safe, and
schema migration to the latest Alembic version on open.

Why: SQLite is the embedded default (one file, no server) but several processes may write it
(driver, service, workers), so it runs in WAL mode with a busy timeout; PostgreSQL is used as-is.
"""

from __future__ import annotations

import re
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from experiments.redact import redact_text

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
CONNECT_TIMEOUT_S = 10  # one PostgreSQL connection attempt; the retry window adds the rest
PROBE_TIMEOUT_S = 5  # a command's start-up probe: a reachable server answers well within it


class StoreUnavailable(RuntimeError):
    """The store cannot be opened or used; the message is one line with what and the fix."""


def parse_store_url(url: str) -> URL:
    """The SQLAlchemy URL, or StoreUnavailable naming the expected form."""
    try:
        return make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise StoreUnavailable(
            f"{redact_text(url)!r} is not a database URL; write e.g. sqlite:///carbs.db or "
            "postgresql+psycopg://user@host:5432/db"
        ) from exc


def sqlite_path(parsed: URL) -> Path | None:
    """The file of a SQLite URL (None: in memory, or not SQLite)."""
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:" or parsed.database.startswith("file::memory:"):
        return None
    return Path(parsed.database).expanduser()


def make_engine(url: str, *, create: bool = True) -> Engine:
    """Create an engine; for SQLite, enable WAL + busy timeout and (with `create`) make the
    parent folder. Without `create` a missing SQLite file is StoreUnavailable: a read-only
    command must not leave an empty database (and folders) behind."""
    parsed = parse_store_url(url)
    path = sqlite_path(parsed)
    if path is not None and not path.is_file():
        if not create:
            raise StoreUnavailable(
                f"no store at {path}: nothing has run with this storage yet; run a sweep "
                "first (`carbs run SPEC.yaml`) or pass --storage URL"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return _create(url, parsed)
    except (NoSuchModuleError, ModuleNotFoundError, ImportError) as exc:
        raise _no_driver(parsed, exc) from exc


def probe(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Connect once to the database server of `url`, without retries, or raise
    StoreUnavailable with one line and the fix.

    Why: the store's retries ride out a server restarting under a running sweep; at the
    start of a command a refused port, an unknown host, a wrong database or login is a typo,
    and waiting out a retry window only delays the message. SQLite is not probed: opening a
    local file already fails at once."""
    parsed = parse_store_url(url)
    if parsed.get_backend_name() == "sqlite":
        return
    connect_args = (
        {"connect_timeout": max(2, round(timeout_s))}
        if parsed.get_backend_name() == "postgresql"
        else {}
    )
    try:
        engine = create_engine(url, poolclass=NullPool, connect_args=connect_args)
    except (NoSuchModuleError, ModuleNotFoundError, ImportError) as exc:
        raise _no_driver(parsed, exc) from exc
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except (SQLAlchemyError, OSError) as exc:
        raise StoreUnavailable(describe_store_error(exc, url)) from exc
    finally:
        engine.dispose()


def _no_driver(parsed: URL, exc: BaseException) -> StoreUnavailable:
    return StoreUnavailable(
        f"no database driver for {parsed.drivername!r} ({exc}); install it (for "
        f"PostgreSQL: pip install 'psycopg[binary]') or use sqlite:/// or "
        f"postgresql+psycopg:// (got a {parsed.get_backend_name()} URL)"
    )


def _create(url: str, parsed: URL) -> Engine:
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    connect_args = (
        {"connect_timeout": CONNECT_TIMEOUT_S} if parsed.get_backend_name() == "postgresql" else {}
    )
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def describe_store_error(exc: BaseException, url: str) -> str:
    """One line for a database error: what happened to which store (no password), and the fix."""
    where = redact_text(url)
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc)
    low = text.lower()
    first = text.strip().splitlines()[0][:200] if text.strip() else type(exc).__name__
    rules = (
        (
            ("database is locked", "database table is locked"),
            f"the store {where} stayed locked by another process; wait for it, or stop it",
        ),
        (
            ("file is not a database", "malformed"),
            f"{where} is not a readable SQLite database (corrupted, or another kind of file); "
            "move it aside to start afresh, or point --storage at the right file",
        ),
        (
            ("unable to open database file",),
            f"cannot open {where}: check the path and its permissions",
        ),
        (
            (
                "could not translate host name",
                "name or service not known",
                "nodename nor servname",
                "temporary failure in name resolution",
            ),
            f"cannot resolve the host of {where}; check the host name in the URL",
        ),
        (
            ("password authentication failed", "no password supplied"),
            f"the database server refused the login of {where}; check user and password",
        ),
        (("does not exist",), _missing_object(first, where)),
        (
            ("does not support ssl", "ssl was required", "ssl connection"),
            f"the server of {where} and the URL disagree on SSL ({first.rpartition(': ')[2]}); "
            "change sslmode in the URL (e.g. ?sslmode=prefer) or the server's SSL setup",
        ),
        (
            (
                "connection refused",
                "could not connect",
                "connection failed",
                "timeout expired",
                "timed out",
            ),
            f"no database server answers at {where}; is it running, and are host and port right?",
        ),
    )
    for fragments, message in rules:
        if any(f in low for f in fragments):
            return message
    return f"the store {where} failed: {type(exc).__name__}: {first}"


def _missing_object(first: str, where: str) -> str:
    """PostgreSQL's 'database "x" does not exist' (or role), said with the command that fixes it."""
    m = re.search(r'(database|role) "([^"]+)" does not exist', first)
    if m is None:
        return f"{first} ({where}); create it or fix the URL"
    kind, name = m.groups()
    fix = f"createdb {name}" if kind == "database" else f"createuser {name}"
    return (
        f"{kind} {name!r} does not exist on the server of {where}; create it (`{fix}`) or "
        "fix the URL"
    )


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent)."""
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def open_sessionmaker(
    url: str, *, upgrade: bool = True, create: bool = True
) -> sessionmaker[Session]:
    """Engine + migrations + a session factory, in one call."""
    engine = make_engine(url, create=create)
    if upgrade:
        migrate(engine)
    return sessionmaker(engine, expire_on_commit=False)
