"""API tokens: stored hashed, verified in constant time, revocable; the 0002 migration."""

from __future__ import annotations

import hashlib

from sqlalchemy import inspect, select

from experiments.service.auth import create_token, revoke_tokens, verify_token
from experiments.store.engine import alembic_config, make_engine, migrate
from experiments.store.repository import Store
from experiments.store.tokens import ApiToken, ApiUser


def test_a_token_verifies_as_its_user_and_is_stored_only_hashed(store_url: str) -> None:
    store = Store(store_url)
    token = create_token(store.session, "alice", label="laptop")
    who = verify_token(store.session, token)
    assert who is not None and who.name == "alice" and not who.is_admin
    with store.session() as s:
        row = s.scalar(select(ApiToken))
        assert row is not None
        secret = token.rsplit("_", 1)[1]
        assert row.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
        assert secret not in (row.secret_sha256, row.key_id, row.label)
        assert row.last_used_at is not None
    store.dispose()


def test_wrong_malformed_and_revoked_tokens_are_rejected(store_url: str) -> None:
    store = Store(store_url)
    token = create_token(store.session, "bob")
    other = create_token(store.session, "carol", admin=True)
    key_id = token.split("_")[1]
    forged = f"carbs_{key_id}_{other.rsplit('_', 1)[1]}"  # right key id, someone else's secret
    assert verify_token(store.session, forged) is None
    assert verify_token(store.session, "not-a-token") is None
    assert verify_token(store.session, token[:-1]) is None
    assert verify_token(store.session, other).is_admin  # type: ignore[union-attr]
    assert revoke_tokens(store.session, "bob") == 1
    assert verify_token(store.session, token) is None
    assert verify_token(store.session, other) is not None
    store.dispose()


def test_a_user_may_hold_several_tokens_and_bad_names_are_refused(store_url: str) -> None:
    store = Store(store_url)
    a, b = create_token(store.session, "dana"), create_token(store.session, "dana")
    assert a != b
    assert verify_token(store.session, a) == verify_token(store.session, b)
    with store.session() as s:
        assert len(list(s.scalars(select(ApiUser)))) == 1
    try:
        create_token(store.session, "no spaces please")
    except ValueError as exc:
        assert "user name" in str(exc)
    else:
        raise AssertionError("a user name with spaces was accepted")
    store.dispose()


def test_migration_0002_adds_and_removes_the_token_tables(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from alembic import command

    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    migrate(engine)
    assert {"api_users", "api_tokens"} <= set(inspect(engine).get_table_names())
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    names = set(inspect(engine).get_table_names())
    assert "api_tokens" not in names and "sweeps" in names
    engine.dispose()
