"""Every trial reaches MLflow (a real local SQLite store): params, final metrics, the learning
curve as step metrics, status and failure reason; the pick with its prediction and exports; a
resumed sweep adds only what is missing; a tracker that fails never loses or fails a trial."""

from __future__ import annotations

from pathlib import Path

import pytest

mlflow = pytest.importorskip("mlflow")

from carbs.scaling.pick import LargeRunPick  # noqa: E402
from experiments.dispatch import TrialOutcome  # noqa: E402
from experiments.dispatch.recorder import OutcomeRecorder  # noqa: E402
from experiments.spec import SweepSpec, parse_spec  # noqa: E402
from experiments.store.models import TrialStatus  # noqa: E402
from experiments.store.repository import Store  # noqa: E402
from experiments.tracking import log_pick, open_tracker, tracking_uri  # noqa: E402

SPEC = """
name: tracked
storage: {storage}
workload:
  kind: callable
  function: "experiments.toy_objectives:chinchilla_toy"
  fixed: {{tokens: 2.0e+8}}
search_space:
  n_params: {{kind: log, min: 1.0e+6, max: 1.0e+8, scales_cost: true}}
optimizer: {{name: local}}
budget: {{max_trials: 5, max_retries: 0}}
target: {{flops: 1.0e+20}}
tracking: {{mlflow_uri: "{uri}", mlflow_experiment: "{experiment}"}}
"""
CURVE = [
    {"step": 10, "tokens": 1e6, "flops": 1e13, "train_loss": 4.0, "lr": 1e-3},
    {"step": 20, "tokens": 2e6, "flops": 2e13, "train_loss": 3.5, "val_loss": 3.6, "lr": 5e-4},
]


@pytest.fixture(scope="module")
def uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One MLflow SQLite store for the module (creating its schema takes seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def _setup(tmp_path: Path, uri: str) -> tuple[SweepSpec, Store, list[int]]:
    """A sweep with three claimed trials, tracked in an experiment named after the test."""
    storage = f"sqlite:///{tmp_path / 'carbs.db'}"
    text = SPEC.format(storage=storage, uri=uri, experiment=f"carbs/{tmp_path.name}")
    spec = parse_spec(text, "tracked.yaml")
    store = Store(storage)
    sweep, _ = store.get_or_create_sweep(spec.name, spec.model_dump(mode="json"), "yaml")
    trials = store.create_trials(sweep.id, [({"n_params": n}, None) for n in (1e6, 1e7, 1e8)])
    store.claim_trials(sweep.id, "d", 3, lease_s=60)
    return spec, store, [t.id for t in trials]


def _record(rec: OutcomeRecorder, ids: list[int]) -> None:
    ok, bad, infra = ids
    rec.record(TrialOutcome(ok, "succeeded", 3.6, 2e13, 1.5, metrics={"mfu": 0.4}, curve=CURVE))
    rec.record(TrialOutcome(bad, "failed", error="loss became nan at step 7", reason="nan"))
    rec.record(TrialOutcome(infra, "infra", error="worker died", reason="worker_died"))


def _runs(uri: str, spec: SweepSpec, kind: str) -> list:  # type: ignore[type-arg]
    client = mlflow.MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(spec.tracking.mlflow_experiment)
    return client.search_runs([exp.experiment_id], f"tags.`carbs.kind` = '{kind}'")


def test_each_trial_becomes_one_run_and_a_resumed_sweep_adds_none(tmp_path: Path, uri: str) -> None:
    spec, store, ids = _setup(tmp_path, uri)
    assert tracking_uri(spec) == uri
    tracker = open_tracker(spec, store)
    _record(OutcomeRecorder(spec, store, "d", None, tracker), ids)
    tracker.close()
    assert tracker.errors == 0
    runs = {r.data.tags["carbs.trial_id"]: r for r in _runs(uri, spec, "trial")}
    assert set(runs) == {str(i) for i in ids}
    ok, bad, infra = (runs[str(i)] for i in ids)
    assert ok.info.status == "FINISHED" and ok.data.tags["carbs.status"] == "succeeded"
    assert ok.data.params == {"n_params": "1000000.0", "tokens": "200000000.0"}
    assert ok.data.metrics["loss"] == 3.6 and ok.data.metrics["mfu"] == 0.4
    client = mlflow.MlflowClient(tracking_uri=uri)
    history = client.get_metric_history(ok.info.run_id, "train_loss")
    assert [(m.step, m.value) for m in history] == [(10, 4.0), (20, 3.5)]
    assert [m.value for m in client.get_metric_history(ok.info.run_id, "lr")] == [1e-3, 5e-4]
    assert bad.info.status == "FAILED" and bad.data.tags["carbs.failure_reason"] == "nan"
    assert "nan at step 7" in bad.data.tags["carbs.error"]
    assert infra.data.tags["carbs.status"] == "error"
    assert infra.data.tags["carbs.failure_reason"] == "worker_died"

    # resume: a driver that tracked nothing (tracking was off for one trial) syncs at start
    sweep = store.require_sweep("tracked")
    (late,) = store.create_trials(sweep.id, [({"n_params": 3e7}, None)])
    store.claim_trials(sweep.id, "d", 1, lease_s=60)
    OutcomeRecorder(spec, store, "d", None).record(TrialOutcome(late.id, "succeeded", 3.4, 1e13))
    again = open_tracker(spec, store)
    again.close()
    tags = sorted(int(r.data.tags["carbs.trial_id"]) for r in _runs(uri, spec, "trial"))
    assert tags == sorted([*ids, late.id])  # the missing one added, none twice


def test_a_failing_tracker_never_loses_or_fails_a_trial(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    uri = f"sqlite:///{tmp_path / 'a-file' / 'mlflow.db'}"  # cannot be created
    spec, store, ids = _setup(tmp_path, uri)
    tracker = open_tracker(spec, store)
    rec = OutcomeRecorder(spec, store, "d", None, tracker)
    _record(rec, ids)
    tracker.close()
    assert tracker.errors > 0
    statuses = [store.get_trial(i).status for i in ids]
    assert statuses == [TrialStatus.SUCCEEDED, TrialStatus.FAILED, TrialStatus.ERROR]
    assert rec.written == 2


def test_the_pick_is_one_run_per_fit_with_prediction_and_exports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a store of its own: a SQLite store's artifacts go to ./mlruns of where it was first opened
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    spec, _, _ = _setup(tmp_path, uri)
    pick = LargeRunPick({"n_params": 3e9, "tokens": 6e10}, 2.31, (2.2, 2.45), 1e20, {}, ["w1"])
    exports = [tmp_path / "large_run.yaml", tmp_path / "hf_dbrx" / "config.json"]
    exports[1].parent.mkdir()
    for p in exports:
        p.write_text("x: 1\n")
    assert log_pick(spec, pick, 7, exports)
    assert not log_pick(spec, pick, 7, exports)  # the same fit: not logged twice
    (run,) = _runs(uri, spec, "pick")
    m = run.data.metrics
    assert (m["predicted_loss"], m["predicted_loss_ci90_lo"], m["predicted_loss_ci90_hi"]) == (
        2.31,
        2.2,
        2.45,
    )
    assert run.data.params["n_params"] == "3000000000.0" and run.data.tags["carbs.fit_id"] == "7"
    client = mlflow.MlflowClient(tracking_uri=uri)
    listed = {a.path for a in client.list_artifacts(run.info.run_id, "exports")}
    assert listed == {"exports/large_run.yaml", "exports/hf_dbrx"}


@pytest.mark.slow
def test_a_real_sweep_run_twice_lands_in_mlflow_once(
    ray_local: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """`carbs run` of the toy sweep with $MLFLOW_TRACKING_URI set, then again (a resume of a
    finished sweep): one run per trial, plus the pick with its exports."""
    import yaml

    from experiments.cli import main

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)  # a SQLite store's artifacts go to ./mlruns
    sweeps = Path(__file__).resolve().parents[2] / "experiments" / "sweeps"
    doc = yaml.safe_load((sweeps / "toy_chinchilla.yaml").read_text())
    doc["storage"] = f"sqlite:///{tmp_path / 'carbs.db'}"
    doc["budget"]["max_trials"] = 8
    spec_file = tmp_path / "toy.yaml"
    spec_file.write_text(yaml.safe_dump(doc))
    for _ in range(2):
        assert main(["run", str(spec_file), "--no-progress", "--out", str(tmp_path / "o")]) == 0
    client = mlflow.MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(f"carbs/{doc['name']}")
    runs = client.search_runs([exp.experiment_id], order_by=["tags.`carbs.trial_id` ASC"])
    trials = [r for r in runs if r.data.tags["carbs.kind"] == "trial"]
    picks = [r for r in runs if r.data.tags["carbs.kind"] == "pick"]
    with capsys.disabled():
        print(f"\nMLflow experiment {exp.name!r} at {uri}:")
        for r in trials + picks:
            m = r.data.metrics
            value = m.get("loss", m.get("predicted_loss"))
            print(
                f"  {r.info.run_name:24s} {r.info.status:8s} {r.data.tags.get('carbs.status', '-'):9s}"
                f" loss={'-' if value is None else f'{value:.4f}'}"
                f" reason={r.data.tags.get('carbs.failure_reason', '-')}"
                f" params={dict(sorted(r.data.params.items()))}"
            )
    ids = [r.data.tags["carbs.trial_id"] for r in trials]
    assert len(ids) == 8 and len(set(ids)) == 8  # every trial once, though the sweep ran twice
    assert len(picks) == 2  # each run's fit is a pick; each once
    for pick in picks:
        assert pick.data.metrics["predicted_loss_ci90_lo"] <= pick.data.metrics["predicted_loss"]
        exported = [a.path for a in client.list_artifacts(pick.info.run_id, "exports")]
        assert exported == ["exports/large_run.yaml"]
    ok = [r for r in trials if r.data.tags["carbs.status"] == "succeeded"]
    assert ok and all(r.data.metrics["loss"] > 1.8 for r in ok)
