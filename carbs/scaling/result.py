"""The large-run pick as returned to callers: config, predicted loss with interval, every fit."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class LargeRunPick:
    """The large run: full config, predicted loss with a 90 % interval, every fit, warnings."""

    params: dict[str, Any]
    predicted_loss: float
    predicted_loss_ci: tuple[float, float]
    target_flops: float
    fits: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": jsonable(self.params),
            "predicted_loss": float(self.predicted_loss),
            "predicted_loss_ci": [float(v) for v in self.predicted_loss_ci],
            "target_flops": float(self.target_flops),
            "fits": jsonable(self.fits),
            "warnings": list(self.warnings),
        }


def jsonable(x: Any) -> Any:
    """Plain JSON types: numpy scalars and arrays unwrapped, non-finite floats as None."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return jsonable(x.item())
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def band(grid: np.ndarray, mid: np.ndarray, boot: np.ndarray) -> dict[str, list[float]]:
    """A 90 % band over bootstrap rows, for plots."""
    if len(boot) >= 2:
        lo, hi = np.nanquantile(boot, [0.05, 0.95], axis=0)
    else:
        lo = hi = mid
    return {"cost": grid.tolist(), "mid": mid.tolist(), "lo": lo.tolist(), "hi": hi.tolist()}
