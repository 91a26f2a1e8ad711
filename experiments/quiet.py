"""Keep library notices out of a user's terminal: they go to the log, which `carbs -v` shows.

Why: a local Ray announces its token authentication on every start, numpy warns of an overflow
when a fit's optimizer tries a step it then rejects, and GPyTorch of the jitter it adds to a
covariance; a user can act on none of them, and they bury the lines that matter. In the log they
are still there for whoever debugs. Only this process's terminal is quieted, for the duration of
one command: library code and the tests see every warning as usual.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

log = logging.getLogger("experiments.notices")

# Loggers of Ray's start-up notices (ray/_private/authentication/authentication_token_setup.py:
# "Token authentication is enabled for this Ray cluster ...").
RAY_NOTICE_LOGGERS = ("ray._private.authentication.authentication_token_setup",)
# numpy's floating-point warnings (np.seterr's "warn") and GPyTorch's jitter notice.
NUMERIC_WARNING = re.compile(
    r"(overflow|underflow|invalid value|divide by zero) encountered|not p\.d\., added jitter"
)


@contextmanager
def notices_to_log(verbose: bool) -> Iterator[None]:
    """Within the block, numeric warnings become INFO records of `experiments.notices`; unless
    `verbose`, Ray's notice loggers print errors only. Other warnings are shown as usual."""
    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show(
            message: Warning | str,
            category: type[Warning],
            filename: str,
            lineno: int,
            file: TextIO | None = None,
            line: str | None = None,
        ) -> None:
            if NUMERIC_WARNING.search(str(message)):
                log.info("%s: %s (%s:%d)", category.__name__, message, filename, lineno)
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        saved: list[tuple[logging.Logger, Any]] = []
        if not verbose:
            for name in RAY_NOTICE_LOGGERS:
                logger = logging.getLogger(name)
                saved.append((logger, logger.level))
                logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in saved:
                logger.setLevel(level)
