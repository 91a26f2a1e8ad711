"""The lines a sweep ends on: the large-run pick, its predicted loss and interval, and the backtest.

Why here and not in the report: these are what a researcher reads in the terminal when `carbs
run` returns, so they say in plain words whether the law is determined and how well it
predicted costlier runs it had not seen, from the same stored fit as every figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

# a 90 % interval wider than this share of the loss is said to be wide, with the reason
WIDE_INTERVAL = 0.05
SHOWN_PARAMS = 8
MAX_NOTES = 3  # the pick's other warnings shown; the rest are in the export


def pick_lines(result: Mapping[str, Any], searched: Sequence[str] = ()) -> list[str]:
    """The closing lines for a stored `large_run_pick` fit result (`LargeRunPick.to_dict()`);
    `searched` names the sweep's searched parameters, shown (the fixed ones are not)."""
    fits = result.get("fits") or {}
    lines = [_pick_line(result, fits, searched), _loss_line(result)]
    lines.extend(_determination_lines(result, fits))
    lines.append(backtest_line(fits.get("backtest") or {}))
    said = " ".join(lines)
    notes = [str(w) for w in result.get("warnings") or [] if str(w) not in said]
    lines.extend(f"note: {w}" for w in notes[:MAX_NOTES])
    if len(notes) > MAX_NOTES:
        lines.append(f"note: {len(notes) - MAX_NOTES} more in large_run.yaml's warnings")
    return lines


def _pick_line(result: Mapping[str, Any], fits: Mapping[str, Any], searched: Sequence[str]) -> str:
    params = result.get("params") or {}
    names = [k for k in searched if k in params] or list(params)
    shown = ", ".join(f"{k} {_num(params[k])}" for k in names[:SHOWN_PARAMS])
    more = f" (+{len(names) - SHOWN_PARAMS} more)" if len(names) > SHOWN_PARAMS else ""
    costs = [c for c in (fits.get("runs") or {}).get("cost") or [] if isinstance(c, int | float)]
    target = float(result.get("target_flops") or 0.0)
    reach = f", {target / max(costs):.0f}x the costliest trial" if costs and target else ""
    return f"large run at {target:.3g} FLOPs{reach}: {shown}{more}"


def _loss_line(result: Mapping[str, Any]) -> str:
    loss = float(result["predicted_loss"])
    lo, hi = (float(v) for v in result["predicted_loss_ci"])
    pred = ((result.get("fits") or {}).get("pick") or {}).get("prediction") or {}
    regret = float(pred.get("expected_regret_log") or 0.0)
    within = f"; {100 * math.expm1(regret):.1f} % above the law's optimum" if regret else ""
    return (
        f"predicted loss {loss:.4f} (90% interval {lo:.4f}..{hi:.4f}, "
        f"{100 * (lo / loss - 1):+.1f} % / {100 * (hi / loss - 1):+.1f} %{within})"
    )


def _determination_lines(result: Mapping[str, Any], fits: Mapping[str, Any]) -> list[str]:
    """A plain sentence when the law is not determined or the interval is wide, and why."""
    warnings = [str(w) for w in result.get("warnings") or []]
    undetermined = [w for w in warnings if "not determined" in w or "weakly determined" in w]
    if undetermined:
        return [f"the law is not determined by these runs: {undetermined[0]}"]
    loss = float(result["predicted_loss"])
    lo, hi = (float(v) for v in result["predicted_loss_ci"])
    if (hi - lo) / 2 / loss <= WIDE_INTERVAL:
        return []
    pred = ((fits.get("pick") or {}).get("prediction")) or {}
    boot, form = pred.get("bootstrap_sd_log") or 0.0, pred.get("model_form_sd_log") or 0.0
    why = (
        "mostly the backtest's error of the law's form, grown with the extrapolation"
        if form > boot
        else "mostly the runs' noise (the bootstrap)"
    )
    return [f"the interval is wide ({why}): more runs spread over more compute narrow it"]


def backtest_line(backtest: Mapping[str, Any]) -> str:
    """One line: the law fitted on the cheaper runs, its error on the costlier ones."""
    folds: Sequence[Mapping[str, Any]] = backtest.get("folds") or []
    if not folds:
        return f"backtest: none ({backtest.get('reason', 'too few runs')})"
    widest = min(folds, key=lambda f: float(f["cutoff_cost"]))
    costs, losses, preds = (widest[k] for k in ("test_cost", "test_loss", "test_pred"))
    errors = [p / y - 1 for p, y in zip(preds, losses, strict=True)]
    rms = math.sqrt(sum(e * e for e in errors) / len(errors))
    return (
        f"backtest: fitted on the runs up to {float(widest['cutoff_cost']):.3g} FLOPs, it predicted "
        f"the {len(errors)} costlier ones (up to {max(costs) / float(widest['cutoff_cost']):.1f}x "
        f"further) with RMS error {100 * rms:.1f} %; over {len(folds)} cut-offs, "
        f"RMS {100 * _rms_log(backtest):.1f} %"
    )


def _rms_log(backtest: Mapping[str, Any]) -> float:
    v = backtest.get("rms_log_error")
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else float("nan")


def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)
