"""`carbs cancel` and `carbs resume` from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.cli import build_parser, main
from experiments.store.models import TrialStatus
from experiments.store.repository import Store, SweepStatus

SPEC = {"search_space": {"x": {"kind": "log"}}, "constraints": [], "workload": {"kind": "callable"}}


def test_cancel_without_a_running_driver_cancels_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    store = Store(url)
    sweep, _ = store.get_or_create_sweep("idle", SPEC, "yaml")
    store.create_trials(sweep.id, [({"x": 1.0}, None), ({"x": 2.0}, None)])
    (t,) = store.claim_trials(sweep.id, "dead-driver", 1, lease_s=0.0)  # its driver is gone
    assert main(["cancel", "idle", "--storage", url, "--wait", "0"]) == 0
    assert "cancelled" in capsys.readouterr().out
    assert store.sweep_status(sweep.id) == SweepStatus.CANCELLED
    assert store.status_counts(sweep.id) == {TrialStatus.CANCELLED: 2}
    assert store.get_trial(t.id).lease_owner is None
    # cancelling again says so and changes nothing
    assert main(["cancel", "idle", "--storage", url]) == 0
    assert "already cancelled" in capsys.readouterr().out


def test_cancel_with_a_live_driver_only_requests_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    store = Store(url)
    sweep, _ = store.get_or_create_sweep("busy", SPEC, "yaml")
    store.create_trials(sweep.id, [({"x": 1.0}, None), ({"x": 2.0}, None)])
    store.claim_trials(sweep.id, "live-driver", 1, lease_s=60)
    assert main(["cancel", "busy", "--storage", url, "--wait", "0"]) == 0
    assert "cancel requested" in capsys.readouterr().out
    assert store.sweep_status(sweep.id) == SweepStatus.CANCEL_REQUESTED
    assert store.status_counts(sweep.id) == {TrialStatus.RUNNING: 1, TrialStatus.CANCELLED: 1}


def test_cancel_of_an_unknown_sweep_names_the_known_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    Store(url).get_or_create_sweep("real", SPEC, "yaml")
    assert main(["cancel", "typo", "--storage", url]) == 2
    assert "real" in capsys.readouterr().err


def test_resume_takes_the_same_arguments_as_run() -> None:
    args = build_parser().parse_args(["resume", "s.yaml", "--address", "10.0.0.1:6379"])
    assert args.func.__name__ == "_resume" and args.address == "10.0.0.1:6379"
