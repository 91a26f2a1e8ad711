"""Where the pick leaves the law a figure draws, and why, read off `LargeRunPick.fits`.

Why a module of its own: a figure that draws the fitted law and the pick beside it must say
why they differ where they do, and the reasons are the pick's own stages (the learning rate
kept on its safe side, the shape rounded to the searched grid, a setting held at its searched
bound, a law that leaves the values the run may take). Pure functions of the fits, so the text
is tested without drawing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

TOLERANCE = 0.01  # relative gap below which the pick counts as on its law


def at(xs: Sequence[float], ys: Sequence[float], x: float) -> float | None:
    """A curve's value at `x`, interpolated in log-log (None outside it or where y <= 0)."""
    import numpy as np

    if not xs or not (xs[0] <= x <= xs[-1]) or min(ys) <= 0:
        return None
    return float(np.exp(np.interp(math.log(x), np.log(xs), np.log(ys))))


def slope(xs: Sequence[float], ys: Sequence[float], x0: float, x1: float) -> float | None:
    """The law's exponent between x0 and x1: d ln y / d ln x (y ~ x^slope)."""
    y0, y1 = at(xs, ys, x0), at(xs, ys, x1)
    if y0 is None or y1 is None or x1 <= x0:
        return None
    return math.log(y1 / y0) / math.log(x1 / x0)


def off(picked: float, law: float | None) -> bool:
    return law is not None and law > 0 and abs(picked / law - 1) > TOLERANCE


def loss_gap(fits: Mapping[str, Any], predicted: float, target: float) -> list[str]:
    """Why the pick's predicted loss is not the compute-optimal loss at the target."""
    curve = fits["optimal_loss_curve"]
    law = at(curve["compute"], curve["loss"], target)
    if law is None or not off(predicted, law):
        return []
    p = fits.get("pick", {})
    head = f"the pick {100 * (predicted / law - 1):+.1f} % from the curve ({law:.4g}):"
    reasons = [head]
    n_opt, n = p.get("compute_optimal_size"), p.get("size")
    if n_opt and n and off(n, n_opt):
        reasons.append(f"its shape has N {n:.3g}, the law's N {n_opt:.3g}")
    lr = p.get("learning_rate") or {}
    if lr.get("reasons"):
        reasons.append("its lr on the safe side: " + _short(lr["reasons"][0]))
    clamped = [k for k, s in (p.get("settings") or {}).items() if s.get("clamped")]
    if clamped:
        reasons.append(", ".join(clamped) + " held at the searched bound")
    regret = float((p.get("prediction") or {}).get("expected_regret_log") or 0.0)
    if regret > TOLERANCE / 4:
        reasons.append(
            f"+{100 * math.expm1(regret):.1f} % expected for optima known only within their spread"
        )
    if len(reasons) == 1:
        reasons.append("its settings rounded to the searched grid")
    return reasons


def setting_gap(
    fits: Mapping[str, Any], name: str, law: float | None, picked: float | None
) -> list[str]:
    """Why the picked value of a setting is not its law's at the target (empty if it is)."""
    if picked is None or law is None:
        return []
    out: list[str] = []
    searched = (fits.get("searched") or {}).get(name)
    if searched and outside(law, searched):
        out.append(f"the law ({law:.3g}) leaves the searched {describe(searched)}")
    if not off(picked, law):
        return out
    p = fits.get("pick", {})
    s = (p.get("settings") or {}).get(name) or {}
    opt = s.get("optimum")
    if opt is not None and off(opt, law):
        out.append(f"optimum at the pick's N, D: {opt:.3g}")
    lr = p.get("learning_rate") or {}
    if lr.get("picked") is not None and math.isclose(lr["picked"], picked, rel_tol=1e-9):
        out.extend("kept on its safe side: " + _short(r) for r in lr.get("reasons", [])[:1])
    elif s.get("clamped"):
        out.append("held at the searched bound")
    elif searched and not outside(law, searched):
        out.append(f"rounded to the searched {describe(searched)}")
    return out


def size_gap(law: float | None, picked: float | None, what: str) -> list[str]:
    """Why the pick's N or D is not the compute-optimal one (the shape is on the grid)."""
    if picked is None or not off(picked, law):
        return []
    if what == "size":
        return [f"the shape on the searched grid has N {picked:.3g}, not {law:.3g}"]
    return [f"the tokens the picked shape needs to cost the target: {picked:.3g}"]


def outside(value: float, searched: Mapping[str, Any]) -> bool:
    lo, hi = bounds(searched)
    return (lo is not None and value < lo * (1 - 1e-9)) or (
        hi is not None and value > hi * (1 + 1e-9)
    )


def bounds(searched: Mapping[str, Any]) -> tuple[float | None, float | None]:
    choices = [c for c in searched.get("choices") or [] if isinstance(c, int | float)]
    if choices:
        return float(min(choices)), float(max(choices))
    return searched.get("min"), searched.get("max")


def describe(searched: Mapping[str, Any]) -> str:
    if searched.get("choices"):
        return "choices {" + ", ".join(f"{c:g}" for c in searched["choices"]) + "}"
    lo, hi = bounds(searched)
    grid = ""
    if searched.get("multiple_of"):
        grid = f", multiples of {searched['multiple_of']}"
    elif searched.get("integer"):
        grid = ", whole numbers"
    return f"range {lo:g}..{hi:g}{grid}"


def _short(reason: str) -> str:
    """The lr stage's reason up to its first comma: a figure's line, not a paragraph."""
    return reason.split(", ")[0]
