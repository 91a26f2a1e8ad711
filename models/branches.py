"""Decay branches: from one warmup-stable-decay run, the final loss at several shorter token
counts, each from a cool-down branched off the stable phase.

Why: a scaling-law sweep needs the loss at several D; with WSD the stable phase of a long run is
the same as that of every shorter run with the same peak rate, so a short run's result is its
cool-down alone (Hägele et al. 2024; MiniCPM). A branch at `fraction` f of the run's steps S is
the run a standalone WSD of round(f S) steps would be: it starts from the stem's state at the
step where that run's decay would begin, decays over its last `decay_frac`, is evaluated, and the
stem resumes from a snapshot (model, optimizer, data stream) as if nothing happened. The
branch's own cost is only its cool-down; the stem is paid once. A standalone run differs from
its branch only in warmup length (a fraction of S, not of f S) and so in seed noise.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch

from models.schedule import lr_multiplier


@dataclass(frozen=True)
class BranchPlan:
    steps: int  # the standalone run's length: its final loss is the branch's result
    start: int  # the stem step after which the cool-down starts (its decay would begin there)


def plan_branches(
    fractions: tuple[float, ...], steps: int, warmup_frac: float, decay_frac: float
) -> list[BranchPlan]:
    """A branch per fraction that can be cut from a `steps`-step WSD stem: it must start after
    the warmup and end before the stem's own decay (shorter ones are dropped: nothing to share)."""
    warmup = int(round(warmup_frac * steps))
    stem_decay = max(warmup, int(round((1 - decay_frac) * steps)))
    out: dict[int, BranchPlan] = {}
    for f in sorted(set(fractions)):
        n = int(round(f * steps))
        start = max(warmup, int(round((1 - decay_frac) * n)))
        if 0 < start < n and start < stem_decay and n < steps:
            out[n] = BranchPlan(steps=n, start=start)
    return list(out.values())


@dataclass
class Snapshot:
    """Everything a cool-down changes, to put the stem back exactly as it was."""

    model: dict[str, Any]
    optimizer: dict[str, Any]
    generator: torch.Tensor

    @classmethod
    def take(
        cls, model: torch.nn.Module, optimizer: torch.optim.Optimizer, gen: torch.Generator
    ) -> Snapshot:
        return cls(
            copy.deepcopy(model.state_dict()),
            copy.deepcopy(optimizer.state_dict()),
            gen.get_state().clone(),
        )

    def restore(
        self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, gen: torch.Generator
    ) -> None:
        model.load_state_dict(self.model)
        optimizer.load_state_dict(self.optimizer)
        gen.set_state(self.generator)


def cooldown_lr(peak: float, step: int, plan: BranchPlan, min_lr_ratio: float) -> float:
    """The rate at 1-based `step` (> plan.start) of the branch: the standalone run's decay."""
    decay_frac = 1.0 - plan.start / plan.steps
    return peak * lr_multiplier(step - 1, plan.steps, 0.0, "wsd", min_lr_ratio, decay_frac)
