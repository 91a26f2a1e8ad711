"""The measured dtype choice: a probe of the actual step, cached per machine and shape, and
recorded with every trial through the real store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from experiments.dispatch import TrialOutcome
from experiments.dispatch.recorder import OutcomeRecorder
from experiments.dispatch.task import execute_trial
from experiments.entrypoints import MOE_WORKLOAD
from experiments.spec import parse_spec
from experiments.store.repository import Store
from models import dtype_probe
from models.config import MoEConfig
from models.dtype_probe import StepShape, choose_dtype, probe_key

SHAPE = {
    "d_model": 32, "n_layers": 1, "n_heads": 2, "n_kv_heads": 1, "n_experts": 4, "top_k": 2,
    "expert_hidden": 32, "vocab_size": 512, "seq_len": 32, "batch_size": 4,
}  # fmt: skip

SPEC = """
name: probe
seed: 1
storage: {url}
workload:
  kind: moe
  fixed: {{d_model: 32, n_layers: 1, n_heads: 2, n_kv_heads: 1, n_experts: 4, top_k: 2,
          expert_hidden: 32, vocab_size: 512, seq_len: 32, batch_size: 4, eval_tokens: 256,
          corpus: "{corpus}"}}
search_space:
  tokens: {{kind: log, min: 256, max: 1024, scales_cost: true}}
budget: {{max_trials: 2}}
target: {{flops: 1.0e+12}}
"""


@pytest.fixture
def fresh_probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty probe cache (file and in-process memo) for this test only, at one thread (two
    threads on a busy two-core machine time the scheduler, not the step). The step probe runs
    whatever the machine's matmul peaks say: where bf16 is emulated (or a loaded machine times
    its bf16 matmul below fp32's) the probe is skipped, and these tests are of the probe."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("CARBS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(dtype_probe, "_MEMO", {})
    monkeypatch.setattr(dtype_probe, "EMULATED_RATIO", 0.0)
    yield tmp_path / "cache" / "dtype_probe.json"
    torch.set_num_threads(threads)


def test_probe_times_both_dtypes_picks_the_faster_and_is_cached(fresh_probe: Path) -> None:
    cfg = MoEConfig.from_params(SHAPE)
    first = choose_dtype(StepShape(cfg, 4), "cpu", 1)
    seconds = first.probe.step_seconds
    assert first.probe.source == "measured" and set(seconds) == {"float32", "bfloat16"}
    assert first.precision.dtype == min(seconds, key=seconds.__getitem__)
    assert first.precision.peak_flops > 0 and first.probe.spent_seconds > 0
    assert probe_key(cfg, 4, "auto") in json.loads(fresh_probe.read_text())
    again = choose_dtype(StepShape(cfg, 4), "cpu", 1)  # in-process memo
    assert again.probe.source == "cache" and again.probe.step_seconds == seconds
    dtype_probe._MEMO.clear()  # a new process on the same machine reads the file
    assert choose_dtype(StepShape(cfg, 4), "cpu", 1).probe == again.probe
    assert probe_key(cfg, 8, "auto") != probe_key(cfg, 4, "auto")  # the shape is in the key
    forced = choose_dtype(StepShape(cfg, 4), "cpu", 1, requested="float32")
    assert forced.precision.dtype == "float32" and forced.probe.source == "requested"


def test_probe_choice_and_figures_are_stored_with_each_trial(
    fresh_probe: Path, tmp_path: Path, small_corpus: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'probe.db'}"
    spec = parse_spec(SPEC.format(url=url, corpus=small_corpus), "probe.yaml")
    store = Store(url)
    sweep, _ = store.get_or_create_sweep("probe", spec.model_dump(mode="json"), "yaml")
    store.create_trials(sweep.id, [({"tokens": 512.0}, None), ({"tokens": 768.0}, None)])
    recorder = OutcomeRecorder(spec, store, "d", None)
    for trial in store.claim_trials(sweep.id, "d", 2, lease_s=60):
        params = spec.space().full(trial.params)
        raw = execute_trial(MOE_WORKLOAD, params, trial.id, 0, "cpu", {"num_threads": 1})
        assert raw["status"] == "succeeded", raw.get("error")
        recorder.record(TrialOutcome(**raw))
    stored = [t.metrics for t in store.trials(sweep.id)]
    assert [m["dtype_source"] for m in stored] == ["measured", "cache"]  # same shape: one probe
    for m in stored:
        seconds = {d: m[f"probe_step_s_{d}"] for d in ("float32", "bfloat16")}
        assert m["dtype"] == min(seconds, key=seconds.__getitem__)
        assert m["peak_flops"] > 0 and m["compiled"] is False
    assert stored[0]["probe_seconds"] > 0 and stored[1]["probe_seconds"] == 0


def test_emulated_bf16_is_not_probed_and_trains_in_fp32(
    fresh_probe: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # bf16's measured matmul peak below this multiple of fp32's reads as emulated: set far
    # above any machine's ratio, every machine takes the emulated branch
    monkeypatch.setattr(dtype_probe, "EMULATED_RATIO", 1e6)
    choice = choose_dtype(StepShape(MoEConfig.from_params(SHAPE), 4), "cpu", 1)
    assert choice.probe.source == "bf16 emulated" and choice.probe.step_seconds == {}
    assert choice.precision.dtype == "float32" and choice.precision.peak_flops > 0
    assert not fresh_probe.exists()  # nothing timed, nothing cached
