"""The `carbs` command line: run, status, report, export.

Why argparse: the CLI is thin; each sub-command maps to one function of the stages below it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from carbs.errors import SpecError
from experiments.quiet import notices_to_log
from experiments.store.engine import StoreUnavailable, describe_store_error

DEFAULT_OUT = Path("runs")
DISTRIBUTION = "carbs-moe"  # pyproject's [project] name
OUT_HELP = "folder for the plots, tables and exports (a sub-folder per sweep; default: runs)"


def _storage(args: argparse.Namespace) -> str:
    from experiments.spec import DEFAULT_STORAGE, load_spec

    if getattr(args, "storage", None):
        return args.storage
    if getattr(args, "spec", None):
        return load_spec(args.spec).storage
    return os.environ.get("CARBS_STORAGE", DEFAULT_STORAGE)


def cmd_run(args: argparse.Namespace) -> int:
    from experiments.spec import load_spec
    from experiments.store.startup import open_store

    spec = load_spec(args.spec)
    if args.storage:
        spec = spec.model_copy(update={"storage": args.storage})
    store = open_store(spec.storage, create=True)  # a bad URL fails here, before Ray and torch
    # The driver only fits the optimizer's small GPs; trials get the cores (through Ray).
    import torch

    from experiments.dispatch import RayDispatcher, TaskResources
    from experiments.progress import make_progress
    from experiments.runner import SweepRunner
    from experiments.store.repository import SweepConflict

    torch.set_num_threads(1)
    spec_yaml = Path(args.spec).read_text()
    w = spec.workload
    dispatcher = RayDispatcher(
        w.entrypoint,
        TaskResources(w.num_cpus, w.num_gpus, w.memory_gb, w.timeout_s),
        address=args.address,
    )
    started = time.monotonic()
    try:
        runner = SweepRunner(
            spec, spec_yaml, store, dispatcher, make_progress(not args.no_progress)
        )
    except SweepConflict as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"sweep {spec.name!r}: storage {store.safe_url}; starting Ray "
        f"({'cluster at ' + args.address if args.address else 'local'})",
        flush=True,
    )
    dispatcher.start()
    summary = runner.run()
    wall = time.monotonic() - started
    print(
        f"sweep {spec.name!r}: {summary.trials_finished} trials finished ({summary.succeeded} ok, "
        f"{summary.failed} failed, {summary.errors} errors), best loss "
        f"{'-' if summary.best_loss is None else f'{summary.best_loss:.4f}'}, "
        f"{summary.total_cost:.3g} FLOPs, {wall:.0f} s",
        flush=True,
    )
    if summary.retries or summary.requeued or summary.duplicates_ignored:
        print(
            f"  infrastructure retries {summary.retries}, trials reclaimed from dead drivers "
            f"{summary.requeued}, duplicate results ignored {summary.duplicates_ignored}",
            flush=True,
        )
    if summary.cancelled:
        print("cancelled: the sweep was cancelled (carbs cancel or the service)", file=sys.stderr)
        return 0
    if summary.interrupted:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130
    out = Path(args.out) / spec.name
    _report_and_export(store, spec.name, out)
    return 0


def _report_and_export(store, name: str, out: Path) -> None:  # type: ignore[no-untyped-def]
    from dashboards.scaling_plots import plot_scaling
    from experiments.large_run import export_pick, fit_and_pick, trial_points
    from experiments.pick_summary import pick_lines
    from experiments.report import write_report
    from experiments.spec import stored_spec

    for p in write_report(store, name, out):
        print(f"wrote {p}")
    sweep = store.require_sweep(name)
    try:
        fitted = fit_and_pick(store, name)
        paths = export_pick(store, name, fitted, out)
    except (ValueError, RuntimeError) as exc:
        print(f"warning: no large-run export yet: {exc}", file=sys.stderr)
        return
    points = trial_points(
        stored_spec(sweep.spec, sweep.name), store.trials(sweep.id, with_curves=True)
    )
    for p in [*paths, *plot_scaling(points, fitted[1], out)]:
        print(f"wrote {p}")
    for line in pick_lines(fitted[1].to_dict(), list((sweep.spec or {}).get("search_space") or {})):
        print(line)


def cmd_status(args: argparse.Namespace) -> int:
    from experiments.store.startup import open_store

    store = open_store(_storage(args))
    sweeps = [store.require_sweep(args.sweep)] if args.sweep else store.list_sweeps()
    if not sweeps:
        print(f"no sweeps in {store.safe_url}")
    for sw in sweeps:
        counts = store.status_counts(sw.id)
        ok = [t.loss for t in store.trials(sw.id, statuses=["succeeded"]) if t.loss is not None]
        best = f"{min(ok):.4f}" if ok else "-"
        parts = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no trials"
        print(f"{sw.name}: {sw.status}; {parts}; best loss {best}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from experiments.report import format_table, write_report
    from experiments.store.startup import open_store

    store = open_store(_storage(args))
    sweep = store.require_sweep(args.sweep)
    print(format_table(store.trials(sweep.id)))
    for p in write_report(store, args.sweep, Path(args.out) / args.sweep):
        print(f"wrote {p}")
    try:
        from dashboards.scaling_plots import plot_scaling
        from experiments.large_run import fit_and_pick, trial_points
        from experiments.spec import stored_spec

        _, pick = fit_and_pick(store, args.sweep)
        spec = stored_spec(sweep.spec, sweep.name)
        points = trial_points(spec, store.trials(sweep.id, with_curves=True))
        for p in plot_scaling(points, pick, Path(args.out) / args.sweep):
            print(f"wrote {p}")
    except (ValueError, RuntimeError) as exc:
        print(f"warning: no scaling-law plots: {exc}", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from experiments.large_run import UnsupportedFormat, export_sweep
    from experiments.store.startup import open_store

    store = open_store(_storage(args))
    formats = [args.format] if args.format else None
    try:
        paths = export_sweep(
            store, args.sweep, Path(args.out) / args.sweep, formats, args.tokenizer
        )
    except (UnsupportedFormat, ValueError) as exc:  # as the API's 422; a tokenizer mismatch
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for p in paths:
        print(f"wrote {p}")
    return 0


def cmd_checkpoint(args: argparse.Namespace) -> int:
    from experiments.export.trial_checkpoint import export_trial_checkpoint
    from experiments.store.startup import open_store

    store = open_store(_storage(args))
    out = Path(args.out) / args.sweep / f"hf_dbrx_trial_{args.trial}"
    try:
        ck = export_trial_checkpoint(store, args.sweep, args.trial, out, args.device)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"wrote {ck.folder} (config.json, model.safetensors): trial {args.trial} retrained to "
        f"val loss {ck.loss:.4f} (the sweep recorded {ck.stored_loss:.4f})"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The `carbs` parser: global flags, then every sub-command in the order `--help` lists."""
    parser = argparse.ArgumentParser(prog="carbs", description=__doc__.splitlines()[0])
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log what carbs does (INFO), with the library notices it otherwise keeps out of "
        "the terminal (Ray's start-up notices, numeric warnings of the fits)",
    )
    parser.add_argument("--version", action="version", version=f"carbs {package_version()}")
    sub = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        help="`carbs COMMAND --help` for its options",
    )
    _add_run_command(sub)
    _add_store_commands(sub)
    _add_checkpoint_command(sub)

    from experiments.dispatch.commands import register as register_dispatch
    from experiments.fit_table import register as register_fit

    register_fit(sub)
    from experiments.service.commands import register as register_service

    register_dispatch(sub)
    register_service(sub)
    return parser


def _add_run_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    run = sub.add_parser("run", help="run (or resume) the sweep a YAML file defines")
    run.add_argument("spec", help="sweep definition (YAML)")
    run.add_argument(
        "--address", default=os.environ.get("RAY_ADDRESS"), help="existing Ray cluster"
    )
    run.add_argument("--storage", help="override the spec's storage URL")
    run.add_argument("--out", default=str(DEFAULT_OUT), help=OUT_HELP)
    run.add_argument(
        "--no-progress", action="store_true", help="plain log lines instead of a live panel"
    )
    run.set_defaults(func=cmd_run)


def _add_store_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """status, report and export: read a sweep back from the store."""
    for name, func, hlp in (
        ("status", cmd_status, "trial counts and best loss per sweep"),
        ("report", cmd_report, "trials table and plots of a sweep"),
        ("export", cmd_export, "large-run config for the target budget"),
    ):
        p = sub.add_parser(name, help=hlp)
        if name == "status":
            p.add_argument("sweep", nargs="?", help="name of one sweep (default: every sweep)")
        else:
            p.add_argument("sweep", help="name of the sweep (`carbs status` lists them)")
        p.add_argument(
            "--storage", help="SQLAlchemy URL (default: $CARBS_STORAGE or sqlite:///carbs.db)"
        )
        p.add_argument("--spec", help="read the storage URL from this sweep file")
        if name != "status":
            p.add_argument("--out", default=str(DEFAULT_OUT), help=OUT_HELP)
        if name == "export":
            _add_export_format_flags(p)
        p.set_defaults(func=func)


def _add_export_format_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--format",
        choices=["yaml", "llm-foundry", "hf-dbrx"],
        help="one format only (default: every format the workload has)",
    )
    p.add_argument(
        "--tokenizer",
        help="tokenizer the llm-foundry config trains with (hub name or local "
        "tokenizer.json); refused when it has more tokens than the pick's vocab_size",
    )


def _add_checkpoint_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ck = sub.add_parser(
        "checkpoint", help="retrain a trial and write it as a Hugging Face DBRX checkpoint"
    )
    ck.add_argument("sweep", help="sweep name")
    ck.add_argument("trial", type=int, help="trial number (as in `carbs report`)")
    ck.add_argument(
        "--storage", help="SQLAlchemy URL (default: $CARBS_STORAGE or sqlite:///carbs.db)"
    )
    ck.add_argument("--spec", help="read the storage URL from this sweep file")
    ck.add_argument("--out", default=str(DEFAULT_OUT), help=OUT_HELP)
    ck.add_argument(
        "--device", default="cpu", choices=["cpu", "cuda"], help="where to retrain the trial"
    )
    ck.set_defaults(func=cmd_checkpoint)


def package_version() -> str:
    """The installed distribution's version (pyproject's), for `carbs --version`."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "(not installed: run scripts/setup.sh)"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        with notices_to_log(args.verbose):
            return int(args.func(args) or 0)
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except LookupError as exc:
        print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    except StoreUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except SQLAlchemyError as exc:  # the store failed mid-command, after the retry window
        print(f"error: {describe_store_error(exc, _storage_or_default(args))}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:  # before the sweep loop (which handles Ctrl-C itself): no trace
        print("interrupted: run the same command again (a sweep resumes)", file=sys.stderr)
        return 130


def _storage_or_default(args: argparse.Namespace) -> str:
    try:
        return _storage(args)
    except SpecError:
        return "(the sweep file's storage)"


if __name__ == "__main__":
    sys.exit(main())
