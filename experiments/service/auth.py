"""Per-researcher API tokens: create (admin command), verify (every mutating request).

Why this shape: a token is `carbs_<key_id>_<secret>`. The public `key_id` finds the row in one
indexed lookup; the secret is kept only as its SHA-256 and compared with `hmac.compare_digest`, so
neither a database dump nor response timing gives a usable token away.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from experiments.store.models import utcnow
from experiments.store.tokens import ApiToken, ApiUser

TOKEN_PREFIX = "carbs"
_TOKEN_RE = re.compile(r"^carbs_([0-9a-f]{16})_([0-9a-f]{32,128})$")
USER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")


@dataclass(frozen=True)
class Principal:
    """Who made a request: the user's name (a sweep's `owner`) and whether they are an admin."""

    name: str
    is_admin: bool = False


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(
    sessions: Callable[[], Session], user: str, *, admin: bool = False, label: str | None = None
) -> str:
    """Create `user` if new and give them a fresh token; returns the plaintext (shown only once).

    Raises ValueError when the user name is not a plain identifier.
    """
    if not USER_RE.match(user):
        raise ValueError(
            f"user name {user!r} is not allowed: use letters, digits and _ . @ - "
            "(at most 100 characters, starting with a letter or digit)"
        )
    key_id = secrets.token_hex(8)
    secret = secrets.token_hex(24)  # 192 bits, no separator characters
    with sessions() as s, s.begin():
        u = s.scalar(select(ApiUser).where(ApiUser.name == user))
        if u is None:
            u = ApiUser(name=user, is_admin=admin)
            s.add(u)
            s.flush()
        elif admin and not u.is_admin:
            u.is_admin = True
        s.add(ApiToken(user_id=u.id, key_id=key_id, secret_sha256=hash_secret(secret), label=label))
    return f"{TOKEN_PREFIX}_{key_id}_{secret}"


def verify_token(sessions: Callable[[], Session], token: str) -> Principal | None:
    """The token's user, or None for a malformed, unknown or revoked token."""
    m = _TOKEN_RE.match(token.strip())
    if m is None:
        return None
    key_id, secret = m.groups()
    with sessions() as s:
        row = s.execute(
            select(ApiToken, ApiUser)
            .join(ApiUser, ApiUser.id == ApiToken.user_id)
            .where(ApiToken.key_id == key_id)
        ).first()
    if row is None:
        return None
    tok, user = row
    if tok.revoked_at is not None:
        return None
    if not hmac.compare_digest(tok.secret_sha256, hash_secret(secret)):
        return None
    _touch(sessions, tok.id)
    return Principal(name=user.name, is_admin=bool(user.is_admin))


def revoke_tokens(sessions: Callable[[], Session], user: str) -> int:
    """Revoke every live token of `user`; returns how many."""
    with sessions() as s, s.begin():
        ids = select(ApiUser.id).where(ApiUser.name == user).scalar_subquery()
        res = s.execute(
            update(ApiToken)
            .where(ApiToken.user_id == ids, ApiToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        return int(res.rowcount or 0)


def _touch(sessions: Callable[[], Session], token_id: int) -> None:
    """Record the last use (best effort: a busy database must not fail the request)."""
    try:
        with sessions() as s, s.begin():
            s.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=utcnow()))
    except Exception:  # noqa: BLE001 - bookkeeping only
        pass
