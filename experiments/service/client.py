"""A small HTTP client of the service, used by `carbs submit` and `carbs remote ...`.

Why: researchers submit from their laptop or a login node; the token comes from $CARBS_TOKEN or
the file `~/.config/carbs/token` so it never sits in shell history.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

TOKEN_ENV = "CARBS_TOKEN"
SERVER_ENV = "CARBS_SERVER"


class ServiceError(RuntimeError):
    """The service answered with an error; the message is ready to print."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def token_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "carbs" / "token"


def load_token() -> str | None:
    """$CARBS_TOKEN, else the first line of ~/.config/carbs/token, else None."""
    tok = os.environ.get(TOKEN_ENV, "").strip()
    if tok:
        return tok
    f = token_file()
    if f.is_file():
        line = f.read_text().strip().splitlines()
        return line[0].strip() if line else None
    return None


def _message(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return f"HTTP {resp.status_code}: {resp.text[:500]}"
    detail = body.get("detail") if isinstance(body, dict) else body
    if isinstance(detail, dict) and "errors" in detail:
        lines = [detail.get("message", "").splitlines()[0]]
        lines += [f"  - {e['field']}: {e['message']}" for e in detail["errors"]]
        return "\n".join(lines)
    if isinstance(detail, list):  # FastAPI's own request validation
        return "\n".join(
            f"  - {'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg')}" for d in detail
        )
    return f"HTTP {resp.status_code}: {detail}"


class ServiceClient:
    def __init__(self, server: str, token: str | None = None, timeout: float = 60.0) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self._http = httpx.Client(base_url=self.server, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, *, auth: bool = False, **kw: Any) -> Any:
        headers = {}
        if auth:
            if not self.token:
                raise ServiceError(
                    401,
                    f"this needs an API token: set ${TOKEN_ENV} or write it to {token_file()} "
                    "(an admin creates one with `carbs token create USER`)",
                )
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            resp = self._http.request(method, path, headers=headers, **kw)
        except httpx.HTTPError as exc:
            raise ServiceError(0, f"cannot reach the service at {self.server}: {exc}") from exc
        if resp.status_code >= 400:
            raise ServiceError(resp.status_code, _message(resp))
        return resp.json()

    def submit(self, spec_yaml: str) -> dict[str, Any]:
        return self._call("POST", "/api/sweeps", auth=True, json={"spec_yaml": spec_yaml})

    def cancel(self, name: str) -> dict[str, Any]:
        return self._call("POST", f"/api/sweeps/{name}/cancel", auth=True)

    def sweeps(self) -> list[dict[str, Any]]:
        return self._call("GET", "/api/sweeps")

    def sweep(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/api/sweeps/{name}")

    def whoami(self) -> dict[str, Any]:
        return self._call("GET", "/api/whoami", auth=True)
