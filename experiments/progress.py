"""Live progress of a sweep: a rich panel on a terminal, one plain line per event elsewhere.

Both show how much of the budget is spent and an ETA: a sweep stops at whichever budget runs out
first (`max_trials`, or `max_total_cost` FLOPs), so the fraction spent is the larger of the two,
and the time left is this run's pace (the fraction spent since the sink first saw the sweep,
over the time since) applied to what remains. A resumed sweep's earlier trials do not count as
this run's speed.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Protocol

from rich.console import Console
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table


@dataclass
class SweepProgress:
    name: str
    max_trials: int
    done: int = 0
    running: int = 0
    failed: int = 0
    errors: int = 0
    best_loss: float | None = None
    cost_spent: float = 0.0
    max_total_cost: float | None = None
    started: float = field(default_factory=time.monotonic)
    last_event: str = ""

    def line(self) -> str:
        best = "-" if self.best_loss is None else f"{self.best_loss:.4f}"
        budget = f"/{self.max_total_cost:.3g}" if self.max_total_cost else ""
        return (
            f"[{self.name}] done {self.done}/{self.max_trials}  running {self.running}  "
            f"failed {self.failed}  errors {self.errors}  best loss {best}  "
            f"cost {self.cost_spent:.3g}{budget} FLOPs  {time.monotonic() - self.started:.0f}s"
        )


def budget_fraction(state: SweepProgress) -> float:
    """How much of the sweep's budget is spent, 0..1: the larger of trials done / max_trials and
    cost / max_total_cost (the sweep stops at whichever runs out first)."""
    parts = [state.done / state.max_trials] if state.max_trials > 0 else []
    if state.max_total_cost:
        parts.append(state.cost_spent / state.max_total_cost)
    return min(max(parts, default=0.0), 1.0)


@dataclass(frozen=True)
class Pace:
    """Where the budget stood when a sink first saw the sweep: the origin of its ETA."""

    fraction: float
    at: float

    def eta_s(self, fraction: float, now: float) -> float | None:
        """Seconds until the budget is spent at this run's pace; None before anything was spent
        in this run (no pace yet), 0 once it is all spent."""
        if fraction >= 1.0:
            return 0.0
        gained = fraction - self.fraction
        if gained <= 0 or now <= self.at:
            return None
        return (now - self.at) * (1.0 - fraction) / gained


def format_duration(seconds: float | None) -> str:
    """'-' (unknown), '45s', '12m05s' or '3h20m': short enough for a status line."""
    if seconds is None:
        return "-"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class _PaceTracker:
    """The budget fraction and ETA of each update, from the first update's origin."""

    def __init__(self) -> None:
        self.pace: Pace | None = None

    def measure(self, state: SweepProgress) -> tuple[float, float | None]:
        fraction, now = budget_fraction(state), time.monotonic()
        if self.pace is None:
            self.pace = Pace(fraction, now)
        return fraction, self.pace.eta_s(fraction, now)


class ProgressSink(Protocol):
    def update(self, state: SweepProgress, event: str | None = None) -> None: ...
    def close(self) -> None: ...


class PlainProgress:
    """For logs and CI: one line per event."""

    def __init__(self, stream=None) -> None:  # type: ignore[no-untyped-def]
        self.stream = stream or sys.stdout
        self.tracker = _PaceTracker()

    def update(self, state: SweepProgress, event: str | None = None) -> None:
        fraction, eta = self.tracker.measure(state)
        if event:
            print(
                f"{state.line()}  {fraction:.0%} eta {format_duration(eta)}  | {event}",
                file=self.stream,
                flush=True,
            )

    def close(self) -> None:
        return None


class RichProgress:
    """For a terminal: a panel redrawn in place (each second too, so elapsed time and ETA tick
    between events), with a budget bar and the recent events under it."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self.events: list[str] = []
        self.tracker = _PaceTracker()
        self.state: SweepProgress | None = None
        self._measured: tuple[float, float | None, float] = (0.0, None, time.monotonic())
        self.live = Live(
            console=self.console,
            get_renderable=self.render,
            refresh_per_second=1,
            transient=False,
        )
        self.live.start()

    def update(self, state: SweepProgress, event: str | None = None) -> None:
        if event:
            self.events = (self.events + [event])[-8:]
        fraction, eta = self.tracker.measure(state)
        self.state, self._measured = state, (fraction, eta, time.monotonic())
        self.live.refresh()

    def render(self) -> Table:
        """The panel now: the ETA measured at the last event, less the time since."""
        state = self.state
        if state is None:
            return Table(title="sweep starting", show_header=False)
        fraction, eta, at = self._measured
        left = None if eta is None else max(eta - (time.monotonic() - at), 0.0)
        bar = Table.grid(padding=(0, 1))
        bar.add_row(
            ProgressBar(total=1.0, completed=fraction, width=30),
            f"{fraction:.0%} of the budget, eta {format_duration(left)}",
        )
        table = Table(title=f"sweep {state.name}", show_header=False, expand=False)
        table.add_row("budget", bar)
        best = "-" if state.best_loss is None else f"{state.best_loss:.4f}"
        budget = f" / {state.max_total_cost:.3g}" if state.max_total_cost else ""
        table.add_row("trials done", f"{state.done} / {state.max_trials}")
        table.add_row("running", str(state.running))
        table.add_row("failed (config) / errors (infra)", f"{state.failed} / {state.errors}")
        table.add_row("best loss", best)
        table.add_row("cost spent", f"{state.cost_spent:.3g}{budget} FLOPs")
        table.add_row("elapsed", format_duration(time.monotonic() - state.started))
        for e in self.events:
            table.add_row("", e)
        return table

    def close(self) -> None:
        self.live.stop()


def make_progress(enabled: bool = True) -> ProgressSink:
    if enabled and sys.stdout.isatty():
        return RichProgress()
    return PlainProgress()
