"""Live progress of a sweep: a rich panel on a terminal, one plain line per event elsewhere."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Protocol

from rich.console import Console
from rich.live import Live
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


class ProgressSink(Protocol):
    def update(self, state: SweepProgress, event: str | None = None) -> None: ...
    def close(self) -> None: ...


class PlainProgress:
    """For logs and CI: one line per event."""

    def __init__(self, stream=None) -> None:  # type: ignore[no-untyped-def]
        self.stream = stream or sys.stdout

    def update(self, state: SweepProgress, event: str | None = None) -> None:
        if event:
            print(f"{state.line()}  | {event}", file=self.stream, flush=True)

    def close(self) -> None:
        return None


class RichProgress:
    """For a terminal: a panel redrawn in place, with the recent events under it."""

    def __init__(self) -> None:
        self.console = Console()
        self.events: list[str] = []
        self.live = Live(console=self.console, refresh_per_second=4, transient=False)
        self.live.start()

    def update(self, state: SweepProgress, event: str | None = None) -> None:
        if event:
            self.events = (self.events + [event])[-8:]
        table = Table(title=f"sweep {state.name}", show_header=False, expand=False)
        best = "-" if state.best_loss is None else f"{state.best_loss:.4f}"
        budget = f" / {state.max_total_cost:.3g}" if state.max_total_cost else ""
        table.add_row("trials done", f"{state.done} / {state.max_trials}")
        table.add_row("running", str(state.running))
        table.add_row("failed (config) / errors (infra)", f"{state.failed} / {state.errors}")
        table.add_row("best loss", best)
        table.add_row("cost spent", f"{state.cost_spent:.3g}{budget} FLOPs")
        table.add_row("elapsed", f"{time.monotonic() - state.started:.0f} s")
        for e in self.events:
            table.add_row("", e)
        self.live.update(table)

    def close(self) -> None:
        self.live.stop()


def make_progress(enabled: bool = True) -> ProgressSink:
    if enabled and sys.stdout.isatty():
        return RichProgress()
    return PlainProgress()
