"""Library notices leave the terminal during a CLI command and go to the log; nothing else does."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest

from experiments.quiet import RAY_NOTICE_LOGGERS, notices_to_log


def test_numeric_warnings_go_to_the_log_and_other_warnings_stay(caplog) -> None:  # type: ignore[no-untyped-def]
    with caplog.at_level(logging.INFO, logger="experiments.notices"):
        with pytest.warns(UserWarning, match="a real problem") as shown:
            with notices_to_log(verbose=False):
                np.exp(np.array([1000.0]))  # numpy: "overflow encountered in exp"
                warnings.warn("a real problem", UserWarning, stacklevel=1)
    assert [str(w.message) for w in shown] == ["a real problem"]
    logged = [r for r in caplog.records if r.name == "experiments.notices"]
    assert len(logged) == 1 and "overflow encountered in exp" in logged[0].getMessage()
    assert logged[0].levelno == logging.INFO  # `carbs -v` shows it
    with pytest.warns(RuntimeWarning, match="overflow"):  # outside a command: as numpy says
        np.exp(np.array([1000.0]))


def test_ray_notices_are_kept_back_unless_verbose(caplog) -> None:  # type: ignore[no-untyped-def]
    ray_log = logging.getLogger(RAY_NOTICE_LOGGERS[0])
    with caplog.at_level(logging.WARNING):
        with notices_to_log(verbose=False):
            ray_log.warning("Token authentication is enabled for this Ray cluster.")
        assert caplog.records == []
        with notices_to_log(verbose=True):
            ray_log.warning("Token authentication is enabled for this Ray cluster.")
        assert len(caplog.records) == 1
    assert ray_log.level == logging.NOTSET  # restored after the command
