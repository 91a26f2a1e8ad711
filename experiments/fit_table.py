"""`carbs fit runs.csv --target 1e21`: the scaling model fitted on imported runs (a CSV of
published results, or of runs made elsewhere), and what it says at a target compute.

Why a command of its own: a researcher with results from another framework wants the same
model our sweeps get (structure chosen by backtest, intervals that own up to the form's error),
without writing a sweep. It prints the model, the compute-optimal size and tokens at the target,
each setting's optimum there, and the predicted loss with its interval.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path
from typing import Any

SIZE_COLUMNS = ("params", "n", "N", "n_params", "parameters", "Model Size")
TOKEN_COLUMNS = ("tokens", "D", "d", "n_tokens", "train_tokens")
LOSS_COLUMNS = ("loss", "val_loss", "final_loss")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "fit", help="fit the scaling model on imported runs (CSV) and predict a target"
    )
    p.add_argument("csv", help="one row per run, with size, tokens and loss columns")
    p.add_argument("--target", type=float, required=True, help="compute of the run to plan (FLOPs)")
    p.add_argument("--size", help=f"column of N (default: the first of {', '.join(SIZE_COLUMNS)})")
    p.add_argument(
        "--tokens", help=f"column of D (default: the first of {', '.join(TOKEN_COLUMNS)})"
    )
    p.add_argument(
        "--loss", help=f"column of the loss (default: the first of {', '.join(LOSS_COLUMNS)})"
    )
    p.add_argument("--cost", help="column of training FLOPs (default: 6 N D)")
    p.add_argument(
        "--settings", default="", help="comma-separated columns to fit optima for (e.g. lr,bs)"
    )
    p.add_argument(
        "--lr", help="which settings column is the learning rate (its penalty may be lopsided)"
    )
    p.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="COLUMN=VALUE",
        help="keep only rows with this value (repeatable)",
    )
    p.add_argument("--bootstrap", type=int, default=200, help="bootstrap refits for the intervals")
    p.add_argument("--json", help="also write the model and the prediction to this file")
    p.set_defaults(func=cmd_fit)


def read_rows(path: Path, where: list[str]) -> list[dict[str, Any]]:
    """The CSV's rows, filtered by `where`; ValueError naming what is wrong."""
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for cond in where:
        key, sep, value = cond.partition("=")
        if not sep:
            raise ValueError(f"--where {cond!r}: write COLUMN=VALUE")
        if rows and key not in rows[0]:
            raise ValueError(f"--where: no column {key!r}; columns are {sorted(rows[0])}")
        kept = [r for r in rows if r.get(key) == value]
        if rows and not kept:
            seen = sorted({str(r.get(key)) for r in rows})
            shown = ", ".join(seen[:10]) + (", ..." if len(seen) > 10 else "")
            raise ValueError(f"--where {cond!r}: no row has {key} = {value!r}; it has {shown}")
        rows = kept
    if not rows:
        raise ValueError(f"{path}: no rows (after --where filters)")
    return rows


def _column(
    rows: list[dict[str, Any]], given: str | None, options: tuple[str, ...], what: str
) -> str:
    cols = list(rows[0])
    if given:
        if given not in cols:
            raise ValueError(f"--{what}: no column {given!r}; columns are {cols}")
        return given
    found = next((c for c in options if c in cols), None)
    if found is None:
        raise ValueError(f"no {what} column among {cols}: name it with --{what} COLUMN")
    return found


def cmd_fit(args: argparse.Namespace) -> int:
    from carbs.scaling.evidence import Columns, from_table
    from carbs.scaling.model import ScalingModel, model_summary
    from carbs.scaling.roles import Roles

    try:
        rows = read_rows(Path(args.csv), args.where)
        settings = tuple(s for s in args.settings.split(",") if s)
        cols = Columns(
            _column(rows, args.size, SIZE_COLUMNS, "size"),
            _column(rows, args.tokens, TOKEN_COLUMNS, "tokens"),
            _column(rows, args.loss, LOSS_COLUMNS, "loss"),
            args.cost,
            settings,
        )
        for s in settings:
            _column(rows, s, (), "settings")
        names = {"tokens": cols.tokens} | ({"lr": args.lr} if args.lr else {})
        ev = from_table(rows, cols, Roles(names, settings))
        model = ScalingModel.fit_evidence(ev, n_bootstrap=args.bootstrap)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = target_report(model, args.target)
    _print(model_summary(model), out)
    if args.json:
        Path(args.json).write_text(
            json.dumps({"model": model_summary(model), "target": out}, indent=1)
        )
    return 0


def target_report(model: Any, target: float) -> dict[str, Any]:
    alloc = model.allocation(target)
    pred = model.predict_rows(alloc.log_loss_rows, target)
    opts = model.optima(alloc.size, alloc.tokens)
    return {
        "compute": target,
        "size": alloc.size,
        "size_ci90": list(alloc.size_interval()),
        "tokens": alloc.tokens,
        "loss": pred.loss,
        "loss_ci90": list(pred.interval),
        "optima": {
            k: {"value": o.value, "sd_log": o.sd, "clamped": o.clamped} for k, o in opts.items()
        },
        "extrapolation": f"{math.exp(pred.extrapolation):.3g}x the costliest run",
        "warnings": list(pred.warnings),
    }


def _print(summary: dict[str, Any], out: dict[str, Any]) -> None:
    print(f"model: {summary['structure']}")
    print(
        f"  fitted on {summary['n_runs']} runs; E {summary['irreducible_loss']:.4g}, size exponent "
        f"{summary['size_exponent']:.4g}, data exponent {summary['data_exponent']:.4g}"
    )
    for d in summary["selection"]:
        print(f"  {d}")
    lo, hi = out["loss_ci90"]
    print(
        f"at {out['compute']:.4g} FLOPs ({out['extrapolation']}): N {out['size']:.4g} "
        f"(90% {out['size_ci90'][0]:.3g}..{out['size_ci90'][1]:.3g}), D {out['tokens']:.4g}, "
        f"loss {out['loss']:.4f} (90% CI {lo:.4f}..{hi:.4f})"
    )
    for k, o in out["optima"].items():
        print(
            f"  {k}: {o['value']:.4g} (sd {o['sd_log']:.2f} in log{', clamped' if o['clamped'] else ''})"
        )
    for w in [*summary["warnings"], *out["warnings"]]:
        print(f"warning: {w}")
