"""ASGI middleware in front of every route: the token before the body, a body-size limit, and
security headers on every response.

Why middleware and not route dependencies: FastAPI reads (and spools) a request body before any
dependency runs, so a 200 MB anonymous upload would be read in full just to answer 401. Here a
changing request without a valid token is answered 401 from its headers alone, a declared
`Content-Length` over the limit 413 at once, and a chunked body is cut off as soon as it passes
the limit. The verified user rides in the request scope, so the route does not verify twice.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from anyio import to_thread
from fastapi import HTTPException

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES = 512_000  # a sweep definition (256 KB at most) plus multipart framing
CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PRINCIPAL_KEY = "carbs_principal"

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        b"img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
        b"frame-ancestors 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]

Authenticate = Callable[[Any, str], Any]  # (app, bearer token) -> principal or None


class _BodyTooLarge(HTTPException):
    """Raised from `receive`: FastAPI passes an HTTPException from body parsing through as is
    (any other exception there becomes a 400), so the client gets the 413 it should."""

    def __init__(self, detail: str) -> None:
        super().__init__(413, detail, headers={"Connection": "close"})


async def _answer(send: Send, status: int, detail: str, extra: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + extra})
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """Token first and bounded bodies for changing `/api` requests; headers on every response."""

    def __init__(self, app: ASGIApp, authenticate: Authenticate, max_body: int = MAX_BODY_BYTES):
        self.app = app
        self.authenticate = authenticate
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_headers(send)
        if scope["method"] in CHANGING and scope["path"].startswith("/api/"):
            refusal = await self._refuse(scope)
            if refusal is not None:
                await _answer(send, *refusal)
                return
            receive = self._bounded(receive)
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
        headers = {k.lower(): v for k, v in scope["headers"]}
        token = _bearer(headers.get(b"authorization", b""))
        challenge = [(b"www-authenticate", b"Bearer")]
        if not token:
            return (
                401,
                "this call changes state and needs an API token: send `Authorization: Bearer "
                "<token>` (an admin creates one with `carbs token create USER`)",
                challenge,
            )
        who = await to_thread.run_sync(self.authenticate, scope.get("app"), token)
        if who is None:
            return 401, "the API token is unknown or revoked; ask an admin for a new one", challenge
        scope.setdefault("state", {})[PRINCIPAL_KEY] = who
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                n = int(declared)
            except ValueError:
                return 400, "the Content-Length header is not a number", []
            if n > self.max_body:
                return 413, self._too_large(), [(b"connection", b"close")]
        return None

    def _too_large(self) -> str:
        return f"the request body is over {self.max_body} bytes; a sweep definition is a few KB"

    def _bounded(self, receive: Receive) -> Receive:
        seen = 0

        async def bounded_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise _BodyTooLarge(self._too_large())
            return message

        return bounded_receive


def _bearer(value: bytes) -> str | None:
    scheme, _, token = value.decode("latin-1").strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _with_headers(send: Send) -> Send:
    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            present = {k.lower() for k, _ in message.get("headers", [])}
            message["headers"] = list(message.get("headers", [])) + [
                (k, v) for k, v in SECURITY_HEADERS if k not in present
            ]
        await send(message)

    return send_with_headers
