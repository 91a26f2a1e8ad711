"""The numeric picture of a search space the optimizer works in.

Why: CARBS searches in a "basic" space where one step means the same for every parameter. Here
numeric params use their basic coordinate (`Param.to_basic`) and each categorical param becomes a
one-hot block scaled by the search radius, so one category switch counts like one radius-sized
step in the search prior. GP inputs are that vector affinely mapped to roughly [0, 1] per column
(from the bounds, a pure function of the space) so BoTorch's dimension-scaled priors apply.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from carbs.space import SearchSpace

ConfigKey = tuple[Any, ...]


class SpaceEncoder:
    """Encode/decode configurations, sample candidates around origins, score the search prior."""

    def __init__(self, space: SearchSpace, radius: float, switch_prob: float = 0.2) -> None:
        self.space = space
        self.radius = float(radius)
        self.switch_prob = float(switch_prob)
        self.columns: list[slice] = []
        lo: list[float] = []
        hi: list[float] = []
        col = 0
        for p in space.params:
            if p.kind == "categorical":
                k = len(p.choices)
                self.columns.append(slice(col, col + k))
                lo += [0.0] * k
                hi += [self.radius] * k
                col += k
            else:
                self.columns.append(slice(col, col + 1))
                a, b = p.basic_bounds()
                lo.append(a)
                hi.append(b)
                col += 1
        self.dim = col
        self.lower = np.asarray(lo, dtype=float)
        self.upper = np.asarray(hi, dtype=float)
        centre = self.encode(space.canonical(space.center()))
        finite = np.isfinite(self.lower) & np.isfinite(self.upper)
        width = np.where(finite, self.upper - self.lower, 20.0 * self.radius)
        self._gp_offset = np.where(finite, self.lower, centre - width / 2)
        self._gp_width = np.maximum(width, 1e-9)

    @property
    def search_dims(self) -> int:
        """Number of searched parameters (what CARBS' per-dimension candidate count scales with)."""
        return len(self.space.params)

    def key(self, params: Mapping[str, Any]) -> ConfigKey:
        """A hashable identity of a configuration (floats to 12 significant digits)."""
        return tuple(
            f"{v:.12g}" if isinstance(v, float) else v
            for v in (params[p.name] for p in self.space.params)
        )

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        """Params -> (dim,) search coordinates."""
        z = np.zeros(self.dim)
        for p, sl in zip(self.space.params, self.columns, strict=True):
            if p.kind == "categorical":
                z[sl.start + p.choices.index(params[p.name])] = self.radius
            else:
                z[sl.start] = p.to_basic(params[p.name])
        return z

    def encode_many(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """List of params -> (n, dim) search coordinates."""
        if not configs:
            return np.zeros((0, self.dim))
        return np.stack([self.encode(c) for c in configs])

    def decode(self, z: np.ndarray) -> dict[str, Any]:
        """(dim,) search coordinates -> legal, canonical params (rounded, clamped, conditions)."""
        out: dict[str, Any] = {}
        for p, sl in zip(self.space.params, self.columns, strict=True):
            if p.kind == "categorical":
                out[p.name] = p.choices[int(np.argmax(z[sl]))]
            else:
                out[p.name] = p.from_basic(float(z[sl.start]))
        return self.space.canonical(out)

    def to_gp(self, z: np.ndarray) -> torch.Tensor:
        """(n, dim) search coordinates -> (n, dim) float64 GP inputs, roughly in [-0.5, 0.5]."""
        return torch.as_tensor((z - self._gp_offset) / self._gp_width - 0.5, dtype=torch.float64)

    def sample(
        self,
        origins: np.ndarray,
        n: int,
        rng: np.random.Generator,
        scales: tuple[float, ...] = (1.0,),
    ) -> np.ndarray:
        """(k, dim) origins -> (n, dim) Gaussian steps around uniformly chosen origins.

        Numeric columns move by N(0, radius * s), s drawn per candidate from `scales` (small
        scales give the fine steps a late search needs to settle an optimum to within a
        fraction of a radius), and reflect off finite bounds (keeps the local density instead
        of piling mass on the bound); each categorical re-draws uniformly with `switch_prob`.
        """
        idx = rng.integers(len(origins), size=n)
        z = origins[idx].copy()
        step = np.full(n, self.radius * scales[0])
        if len(scales) > 1:
            step = self.radius * np.asarray(scales, dtype=float)[rng.integers(len(scales), size=n)]
        for p, sl in zip(self.space.params, self.columns, strict=True):
            if p.kind == "categorical":
                k = sl.stop - sl.start
                switch = rng.random(n) < self.switch_prob
                new = rng.integers(k, size=n)
                block = z[:, sl]
                block[switch] = 0.0
                block[switch, new[switch]] = self.radius
                z[:, sl] = block
            else:
                j = sl.start
                x = z[:, j] + rng.normal(0.0, 1.0, size=n) * step
                z[:, j] = _reflect(x, self.lower[j], self.upper[j])
        return z

    def log_prior(self, z: np.ndarray, origins: np.ndarray) -> np.ndarray:
        """(n, dim) candidates, (k, dim) origins -> (n,) log density of the search prior.

        As CARBS: a Normal(0, radius) on the distance to the nearest origin (up to a constant).
        """
        d2 = ((z[:, None, :] - origins[None, :, :]) ** 2).sum(-1).min(axis=1)
        return -d2 / (2.0 * self.radius**2)


def _reflect(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Fold values back into [lo, hi] by mirroring at the bounds (identity when unbounded)."""
    if math.isinf(lo) and math.isinf(hi):
        return x
    if math.isinf(hi):
        return np.where(x < lo, 2 * lo - x, x)
    if math.isinf(lo):
        return np.where(x > hi, 2 * hi - x, x)
    w = hi - lo
    if w <= 0:
        return np.full_like(x, lo)
    y = np.mod(x - lo, 2 * w)
    return lo + np.where(y > w, 2 * w - y, y)
