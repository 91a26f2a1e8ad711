"""The `carbs` command line as a user drives it: run, status, report, export, and clear errors."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from experiments.cli import build_parser, main
from experiments.store.repository import Store

ROOT = Path(__file__).resolve().parents[2]
SWEEPS = ROOT / "experiments" / "sweeps"


def _spec_file(tmp_path: Path, source: str, **changes: object) -> Path:
    spec = yaml.safe_load((SWEEPS / source).read_text())
    for dotted, value in changes.items():
        node = spec
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node[key]
        node[leaf] = value
    path = tmp_path / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.slow
def test_toy_sweep_run_status_report_export(
    ray_local: str, tmp_path: Path, capsys, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    spec = _spec_file(tmp_path, "toy_chinchilla.yaml", storage=db, budget__max_trials=12)
    assert main(["run", str(spec), "--no-progress", "--out", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "12 trials finished" in out and "large run at " in out and "\nbacktest: " in out
    run_dir = tmp_path / "runs" / "toy_chinchilla"
    for name in ("pareto_frontier.png", "pareto_frontier.svg", "trials.csv", "large_run.yaml"):
        assert (run_dir / name).stat().st_size > 0, name
    exported = yaml.safe_load((run_dir / "large_run.yaml").read_text())
    assert set(exported["params"]) >= {"n_params", "tokens", "learning_rate"}
    assert exported["prediction"]["loss"] > 1.8  # the toy's irreducible loss
    assert f"predicted loss {exported['prediction']['loss']:.4f} (90% interval " in out

    assert main(["status", "--storage", db]) == 0
    assert "toy_chinchilla: finished" in capsys.readouterr().out
    assert (
        main(["export", "toy_chinchilla", "--storage", db, "--out", str(tmp_path / "again")]) == 0
    )
    assert (tmp_path / "again" / "toy_chinchilla" / "large_run.yaml").exists()
    assert main(["report", "toy_chinchilla", "--storage", db, "--out", str(tmp_path / "rep")]) == 0
    assert "succeeded" in capsys.readouterr().out


@pytest.mark.slow
def test_a_run_in_a_fresh_process_prints_no_library_notices(tmp_path: Path) -> None:
    """The real command as a user starts it: its own local Ray, its own fits; Ray's token notice
    and numeric warnings stay out of the terminal (in the log: `carbs -v`)."""
    db = f"sqlite:///{tmp_path / 'quiet.db'}"
    spec = _spec_file(tmp_path, "toy_chinchilla.yaml", storage=db, budget__max_trials=8)
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "CARBS_STORAGE")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "experiments.cli", "run", str(spec), "--no-progress"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "8 trials finished" in done.stdout
    assert done.stderr == ""


def test_unknown_sweep_and_bad_spec_exit_2_with_a_message(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    db = f"sqlite:///{tmp_path / 'empty.db'}"
    Store(db).dispose()  # an existing, empty store
    assert main(["export", "nope", "--storage", db]) == 2
    assert "no sweep named 'nope'" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\nsearch_space: {lr: {kind: log, min: -1, max: 1, scales_cost: true}}\ntarget: {flops: 1e20}\n"
    )
    assert main(["run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "search_space.lr" in err


def test_export_refuses_a_format_the_workload_does_not_fit_as_the_api_does(
    tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    from tests.service.service_helpers import seed_sweep

    db = f"sqlite:///{tmp_path / 'toy.db'}"
    seed_sweep(db, "toy", None)  # a callable (toy) workload: no DBRX model to describe
    out = tmp_path / "runs"
    assert main(["export", "toy", "--storage", db, "--out", str(out), "--format", "hf-dbrx"]) == 2
    err = capsys.readouterr().err
    assert "'hf-dbrx' needs the built-in MoE workload" in err and "offers ['yaml']" in err
    assert not out.exists()  # refused before fitting: nothing written
    assert Store(db).exports(Store(db).require_sweep("toy").id) == []
    assert main(["export", "toy", "--storage", db, "--out", str(out), "--format", "yaml"]) == 0
    assert (out / "toy" / "large_run.yaml").is_file()


@pytest.mark.slow
def test_tiny_moe_sweep_trains_for_real_and_exports_hf_config(
    ray_local: str, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    db = f"sqlite:///{tmp_path / 'moe.db'}"
    spec = _spec_file(
        tmp_path,
        "moe_tiny.yaml",
        storage=db,
        budget__max_trials=4,
        search_space__tokens={"kind": "log", "min": 2.0e4, "max": 6.0e4, "scales_cost": True},
        search_space__d_model={
            "kind": "log",
            "min": 32,
            "max": 64,
            "multiple_of": 32,
            "scales_cost": True,
        },
    )
    assert main(["run", str(spec), "--no-progress", "--out", str(tmp_path / "runs")]) == 0
    from experiments.store.repository import Store

    store = Store(db)
    sweep = store.require_sweep("moe_tiny")
    trials = store.trials(sweep.id, statuses=["succeeded"], with_curves=True)
    assert len(trials) >= 3
    for t in trials:
        assert t.metrics["corpus_fingerprint"] == store.get_sweep("moe_tiny").corpus_fingerprint
        assert len(t.curve) >= 2 and t.cost_flops > 1e9
    hf = json.loads((tmp_path / "runs" / "moe_tiny" / "hf_dbrx" / "config.json").read_text())
    assert hf["ffn_config"]["moe_num_experts"] in (4, 8)
    transformers = pytest.importorskip("transformers")
    cfg = transformers.AutoConfig.from_pretrained(tmp_path / "runs" / "moe_tiny" / "hf_dbrx")
    assert cfg.model_type == "dbrx" and cfg.d_model == hf["d_model"]


def _parsers(parser: argparse.ArgumentParser, path: str = "carbs"):  # type: ignore[no-untyped-def]
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, f"{path} {name}")


def test_every_option_and_argument_has_help() -> None:
    missing = [
        f"{path}: {'/'.join(a.option_strings) or a.dest}"
        for path, parser in _parsers(build_parser())
        for a in parser._actions
        if not isinstance(a, argparse._HelpAction | argparse._SubParsersAction)
        and not (a.help or "").strip()
    ]
    assert missing == []
    assert sum(1 for _ in _parsers(build_parser())) > 15  # the walk reached the sub-commands


def test_version_is_the_one_pyproject_declares(capsys) -> None:  # type: ignore[no-untyped-def]
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"carbs {declared}"
