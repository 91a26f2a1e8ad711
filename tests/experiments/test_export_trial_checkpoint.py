"""A finished trial of a real MoE sweep, exported as a DBRX checkpoint by retraining it with its
seed: the rerun reaches the recorded loss, and DbrxForCausalLM loaded with `from_pretrained`
scores the trial's validation batches at that same loss."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from carbs.trial import TrialContext  # noqa: E402
from experiments.cli import main  # noqa: E402
from experiments.export.trial_checkpoint import export_trial_checkpoint  # noqa: E402
from experiments.runner import trial_seed  # noqa: E402
from experiments.spec import parse_spec  # noqa: E402
from experiments.store.models import TrialStatus  # noqa: E402
from experiments.store.repository import Store  # noqa: E402
from experiments.store.trial_result import TrialResult  # noqa: E402
from models.config import MoEConfig, TrainConfig  # noqa: E402
from models.data import eval_batches, load_tokens  # noqa: E402
from models.workload import train_moe  # noqa: E402

SPEC = """
name: ck
seed: 3
storage: {storage}
workload:
  kind: moe
  fixed: {{vocab_size: 2048, seq_len: 64, n_heads: 4, n_kv_heads: 2, batch_size: 8,
          n_layers: 1, n_experts: 4, top_k: 2, expert_hidden: 64, clip_qkv: 4.0}}
search_space:
  d_model: {{kind: log, min: 32, max: 64, multiple_of: 32, scales_cost: true}}
  tokens: {{kind: log, min: 2.0e+4, max: 4.0e+4, scales_cost: true}}
budget: {{max_trials: 1}}
target: {{flops: 1.0e+14}}
"""


@pytest.mark.slow
def test_a_trial_retrained_from_its_seed_loads_into_dbrx_at_its_loss(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'carbs.db'}"
    spec = parse_spec(SPEC.format(storage=storage), "ck.yaml")
    store = Store(storage)
    sweep, _ = store.get_or_create_sweep("ck", spec.model_dump(mode="json"), "yaml")
    (trial,) = store.create_trials(sweep.id, [({"d_model": 32, "tokens": 2.5e4}, None)])
    params = spec.space().full(trial.params)
    # the sweep's own run of the trial, as its Ray task runs it
    out = train_moe(params, TrialContext(trial_id=trial.id, seed=trial_seed(spec, 0)))
    store.finish_trial(
        trial.id, TrialResult(TrialStatus.SUCCEEDED, loss=out["loss"], cost_flops=out["cost"])
    )

    ck = export_trial_checkpoint(store, "ck", 0, tmp_path / "hf")
    assert ck.loss == pytest.approx(ck.stored_loss, abs=1e-5)  # the same model, retrained
    hf = transformers.AutoModelForCausalLM.from_pretrained(ck.folder).eval()
    assert hf.config.carbs["trial"] == 0

    cfg, tc = MoEConfig.from_params(params), TrainConfig.from_params(params)
    data = load_tokens("stdlib", cfg.vocab_size)
    total = count = 0.0
    with torch.no_grad():  # as models.trainer.evaluate: mean over every held-out token
        for x, y in eval_batches(data.val, tc.batch_size, cfg.seq_len, tc.eval_tokens):
            logits = hf(input_ids=x).logits
            ce = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
            total, count = total + ce.item() * y.numel(), count + y.numel()
    assert total / count == pytest.approx(ck.stored_loss, abs=1e-4)

    # the CLI: a trial that did not succeed is refused with a message
    code = main(["checkpoint", "ck", "7", "--storage", storage, "--out", str(tmp_path / "o")])
    assert code == 2
