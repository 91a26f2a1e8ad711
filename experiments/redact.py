"""Credentials out of anything stored or shown: URLs with passwords, `password=` parameters.

Why one module: a sweep file names its store (`postgresql+psycopg://user:secret@host/db`), the
service records the spec, and every reader of the sweep sees it; the store, the API and the CLI's
messages all redact through these two functions, so no path forgets one.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "***"
# scheme://user:password@host  ->  scheme://user:***@host
_URL_PASSWORD = re.compile(
    r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s'\"]*):(?P<pw>[^@\s'\"]*)@"
)
# ?password=...&  /  token=... in query strings or options
_PARAM = re.compile(
    r"(?P<key>\b(?:password|passwd|pwd|secret|token|api_key|apikey|access_key)=)(?P<value>[^&\s'\"]+)",
    re.IGNORECASE,
)


def redact_text(text: str) -> str:
    """`text` with every URL password and password-like query parameter replaced by ***."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}:{REDACTED}@", text)
    return _PARAM.sub(lambda m: f"{m['key']}{REDACTED}", text)


def redact_data(value: Any) -> Any:
    """A copy of plain data (dicts, lists, scalars) with every string passed through
    `redact_text`."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_data(v) for v in value]
    return value
