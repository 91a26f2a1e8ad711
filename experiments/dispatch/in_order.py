"""Finished trials handed on in the order they were submitted (`budget.reproducible`).

Why: the optimizer is a pure function of its observations in order and of the trials pending
when it suggests (`carbs.bayes.optimizer`), and each trial trains from a seed fixed by its
number. With several trials in flight, which one finishes first depends on the machine's
load, so the same spec gives another sweep on every run (the demo's predicted loss moved by
tens of percent between runs). Handing each result on only once every trial submitted before
it has been handed on, and making the next suggestion right after each, gives every suggestion
the same history and the same pending set as any other run: the price is a worker left idle
while a finished trial waits for an earlier, longer one.
"""

from __future__ import annotations

from collections.abc import Iterable

from experiments.dispatch.outcome import TrialOutcome


class InOrderRelease:
    """Holds finished outcomes until every trial submitted before theirs is released."""

    def __init__(self) -> None:
        self._order: list[int] = []
        self._held: dict[int, TrialOutcome] = {}

    def submitted(self, trial_id: int) -> None:
        self._order.append(trial_id)

    def hold(self, finished: Iterable[TrialOutcome]) -> None:
        for outcome in finished:
            self._held[outcome.trial_id] = outcome

    def next_ready(self, in_flight: Iterable[int]) -> TrialOutcome | None:
        """The oldest submitted trial's outcome once it has finished; None while it runs.

        A submitted trial that is neither running nor held (stopped early, cancelled, its lease
        lost to another driver) has no result to wait for and is passed over."""
        running = set(in_flight)
        while self._order:
            head = self._order[0]
            if head in self._held:
                self._order.pop(0)
                return self._held.pop(head)
            if head in running:
                return None
            self._order.pop(0)
        return None

    @property
    def held_ids(self) -> list[int]:
        """Finished trials waiting for an earlier one: each still occupies its slot."""
        return list(self._held)

    def drain(self) -> list[TrialOutcome]:
        """Everything held, oldest first (the sweep stops: no result may be lost)."""
        out = [self._held.pop(t) for t in self._order if t in self._held]
        out += list(self._held.values())
        self._order.clear()
        self._held.clear()
        return out
