import math

import pytest

from carbs.errors import ConfigFailure
from carbs.trial import TrialContext
from models.accounting import training_flops_for_params
from models.workload import train_moe

TINY = {
    "d_model": 32, "n_layers": 1, "n_heads": 2, "n_kv_heads": 1, "n_experts": 4, "top_k": 2,
    "expert_hidden": 32, "vocab_size": 512, "seq_len": 32, "batch_size": 8, "tokens": 8 * 32 * 12,
    "eval_every": 5, "eval_tokens": 512, "learning_rate": 3e-3, "precision": "float32",
}  # fmt: skip


def _ctx(points: list) -> TrialContext:
    return TrialContext(seed=3, report=points.append, extra={"num_threads": 1})


def test_result_has_exact_cost_curve_and_metrics(small_corpus):
    points: list = []
    params = {**TINY, "corpus": str(small_corpus)}
    result = train_moe(params, _ctx(points))
    assert result["cost"] == training_flops_for_params(params)
    assert points == result["curve"]
    assert [p["step"] for p in points if "val_loss" in p] == [5, 10, 12]
    assert points[-1]["val_loss"] == result["loss"] and math.isfinite(result["loss"])
    assert points[-1]["flops"] == result["cost"]
    m = result["metrics"]
    assert m["tokens"] == 12 * 8 * 32 and m["epochs"] == m["tokens"] / m["unique_tokens"]
    assert 0 < m["mfu"] and m["dtype"] == "float32" and len(m["corpus_fingerprint"]) == 64


def test_same_seed_gives_the_same_curve(small_corpus):
    params = {**TINY, "corpus": str(small_corpus), "tokens": 8 * 32 * 3, "eval_every": 3}
    a, b = train_moe(params, _ctx([])), train_moe(params, _ctx([]))
    assert a["loss"] == b["loss"]
    assert [p["train_loss"] for p in a["curve"]] == [p["train_loss"] for p in b["curve"]]


def test_injected_nan_is_a_config_failure(small_corpus):
    with pytest.raises(ConfigFailure) as info:
        train_moe({**TINY, "corpus": str(small_corpus), "fail_at_step": 4}, _ctx([]))
    assert info.value.reason == "nan"


def test_huge_learning_rate_is_reported_as_divergence_or_nan(small_corpus):
    with pytest.raises(ConfigFailure) as info:
        train_moe(
            {**TINY, "corpus": str(small_corpus), "learning_rate": 50.0, "grad_clip": 0}, _ctx([])
        )
    assert info.value.reason in ("diverged", "nan")


def test_config_that_cannot_fit_is_rejected_before_training_as_oom(small_corpus):
    ctx = TrialContext(extra={"num_threads": 1, "device_memory_bytes": 1_000_000})
    with pytest.raises(ConfigFailure) as info:
        train_moe({**TINY, "corpus": str(small_corpus)}, ctx)
    assert info.value.reason == "oom"


def test_invalid_shape_is_a_config_failure():
    with pytest.raises(ConfigFailure) as info:
        train_moe({**TINY, "n_kv_heads": 3}, _ctx([]))
    assert info.value.reason == "invalid"


@pytest.mark.slow
def test_training_loss_falls_on_the_bundled_corpus():
    params = {
        **TINY, "corpus": "stdlib", "corpus_max_bytes": 1_000_000, "vocab_size": 1024,
        "seq_len": 64, "batch_size": 16, "tokens": 16 * 64 * 200, "eval_every": 100,
        "d_model": 64, "expert_hidden": 64, "learning_rate": 1e-2,
    }  # fmt: skip
    result = train_moe(params, _ctx([]))
    curve = result["curve"]
    assert curve[-1]["train_loss"] < curve[0]["train_loss"] - 1.5
    assert result["loss"] < math.log(1024) - 1.5
