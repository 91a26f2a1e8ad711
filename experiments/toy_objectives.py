"""Cheap analytic objectives for trying the pipeline without training anything.

`chinchilla_toy` behaves like a small language-model sweep (loss from parameters N and tokens D,
plus a learning-rate penalty that sharpens with size, and divergence at too high a rate) and
costs microseconds, so tests and demos of the sweep machinery run through real Ray in seconds.
"""

from __future__ import annotations

import math
import random
import time
from typing import Any

from carbs.errors import ConfigFailure

MAX_DELAY_S = 60.0


def chinchilla_toy(params: dict[str, Any]) -> dict[str, float]:
    """Params: n_params, tokens, learning_rate (and optional noise, seed, and `delay_s`: seconds
    to take, at most 60, like a real trial, so recovery tests find trials in flight). Returns
    loss and cost."""
    delay = min(float(params.get("delay_s", 0.0)), MAX_DELAY_S)
    if delay > 0:
        time.sleep(delay)
    n = float(params["n_params"])
    d = float(params["tokens"])
    lr = float(params.get("learning_rate", 1e-3))
    opt_lr = 3e-3 * (n / 1e6) ** -0.25
    if lr > 8 * opt_lr:
        raise ConfigFailure(
            f"diverged: learning rate {lr:.2e} far above stable {opt_lr:.2e}", reason="diverged"
        )
    lr_penalty = 0.08 * math.log(lr / opt_lr) ** 2
    loss = 1.8 + 480.0 / n**0.34 + 2000.0 / d**0.36 + lr_penalty
    noise = float(params.get("noise", 0.0))
    if noise:
        loss += random.Random(hash((n, d, lr, params.get("seed", 0)))).gauss(0.0, noise)
    return {"loss": loss, "cost": chinchilla_toy_cost(params)}


def chinchilla_toy_cost(params: dict[str, Any]) -> float:
    """The price of a `chinchilla_toy` config before it runs (6 N D), for cost limits and picks."""
    return 6.0 * float(params["n_params"]) * float(params["tokens"])


def failing_objective(params: dict[str, Any]) -> dict[str, float]:
    """Always raises: used to check that a broken workload becomes a failed trial, not a crash."""
    raise RuntimeError(f"boom for {params}")


def reporting_toy(params: dict[str, Any], context: Any) -> dict[str, float]:
    """`chinchilla_toy` that takes `points` x `step_s` seconds and reports a learning curve point
    per step through `context.report`, like a real trainer: for trying live curves, streaming
    and early stopping without training anything."""
    points = max(1, min(int(params.get("points", 5)), 1000))
    step_s = min(float(params.get("step_s", 0.1)), MAX_DELAY_S / points)
    final = chinchilla_toy({k: v for k, v in params.items() if k != "delay_s"})["loss"]
    tokens = float(params["tokens"])
    for step in range(1, points + 1):
        time.sleep(step_s)
        seen = tokens * step / points
        loss = final + 2000.0 / seen**0.36 - 2000.0 / tokens**0.36
        flops = 6.0 * float(params["n_params"]) * seen
        point = {"step": step, "tokens": seen, "flops": flops, "train_loss": loss, "val_loss": loss}
        context.report(point)
    return {"loss": final, "cost": chinchilla_toy_cost(params)}
