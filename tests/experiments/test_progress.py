"""The progress sinks' budget bar and ETA: spent is the binding budget, the pace is this run's."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from experiments.progress import (
    Pace,
    PlainProgress,
    RichProgress,
    SweepProgress,
    budget_fraction,
    format_duration,
)


def test_the_budget_that_runs_out_first_sets_the_fraction() -> None:
    trials_bind = SweepProgress("s", max_trials=10, done=5, cost_spent=1e12, max_total_cost=1e14)
    cost_binds = SweepProgress("s", max_trials=10, done=2, cost_spent=8e13, max_total_cost=1e14)
    assert budget_fraction(trials_bind) == pytest.approx(0.5)
    assert budget_fraction(cost_binds) == pytest.approx(0.8)
    assert budget_fraction(SweepProgress("s", max_trials=10, done=3)) == pytest.approx(0.3)
    assert budget_fraction(SweepProgress("s", max_trials=4, done=5)) == 1.0  # retries overshoot


def test_eta_is_this_runs_pace_applied_to_what_is_left() -> None:
    resumed = Pace(fraction=0.5, at=100.0)  # half the budget was spent by an earlier run
    assert resumed.eta_s(0.5, now=130.0) is None  # nothing done yet in this run: no pace
    # 10 % in 20 s: the remaining 40 % takes 80 s (not 20 s x 0.4 / 0.6 from the whole sweep)
    assert resumed.eta_s(0.6, now=120.0) == pytest.approx(80.0)
    assert resumed.eta_s(1.0, now=150.0) == 0.0


def test_durations_read_short() -> None:
    assert [format_duration(s) for s in (None, 44.6, 725, 12_000)] == [
        "-",
        "45s",
        "12m05s",
        "3h20m",
    ]


def test_plain_lines_carry_the_fraction_and_eta() -> None:
    out = io.StringIO()
    sink = PlainProgress(out)
    state = SweepProgress("s", max_trials=4)
    sink.update(state, "started")
    state.done = 2
    sink.update(state, "trial 1 done")
    first, second = out.getvalue().splitlines()
    assert "0% eta -  | started" in first
    assert "50% eta 0s  | trial 1 done" in second  # two trials in a blink: almost no time left


def test_the_terminal_panel_draws_a_bar_of_the_spent_budget() -> None:
    screen = io.StringIO()
    sink = RichProgress(Console(file=screen, force_terminal=True, width=100, color_system=None))
    state = SweepProgress("moe", max_trials=10, done=0, max_total_cost=1e15)
    sink.update(state, "started")
    state.done, state.cost_spent = 3, 6e14
    sink.update(state, "trial 2 done")
    sink.close()
    text = Console(file=io.StringIO(), width=100)
    with text.capture() as cap:
        text.print(sink.render())
    panel = cap.get()
    assert "60% of the budget, eta" in panel and "━" in panel
    assert "trial 2 done" in panel and "3 / 10" in panel
    assert "60% of the budget" in screen.getvalue()  # what the terminal was shown
