"""Decay branches: a cool-down cut from a WSD run's stable phase gives the final loss of a run
that long, and the run itself is unchanged by having branched."""

import math

import pytest

from carbs.errors import ConfigFailure
from carbs.trial import TrialContext
from models.branches import plan_branches
from models.workload import train_moe

TINY = {
    "d_model": 32, "n_layers": 1, "n_heads": 2, "n_kv_heads": 1, "n_experts": 4, "top_k": 2,
    "expert_hidden": 32, "vocab_size": 512, "seq_len": 32, "batch_size": 8,
    "tokens": 8 * 32 * 40, "eval_every": 10, "eval_tokens": 1024, "learning_rate": 3e-3,
    "precision": "float32", "schedule": "wsd", "decay_frac": 0.2,
}  # fmt: skip


def _ctx(seed: int = 3) -> TrialContext:
    return TrialContext(seed=seed, extra={"num_threads": 1})


def test_branches_are_planned_inside_the_stable_phase() -> None:
    plans = plan_branches((0.05, 0.25, 0.5, 0.9, 0.5), steps=100, warmup_frac=0.05, decay_frac=0.2)
    # 0.05 would cool down before the stem's warmup ends: dropped; duplicates once
    assert [(p.steps, p.start) for p in plans] == [(25, 20), (50, 40), (90, 72)]


def test_without_warmup_a_branch_is_exactly_the_shorter_run_and_the_stem_is_untouched(
    small_corpus,
) -> None:
    base = {**TINY, "corpus": str(small_corpus), "warmup_frac": 0.0}
    branched = train_moe({**base, "branches": [0.5]}, _ctx())
    plain = train_moe(base, _ctx())
    half = train_moe({**base, "tokens": TINY["tokens"] // 2}, _ctx())
    (b,) = branched["branches"]
    assert b["tokens"] == TINY["tokens"] // 2
    assert b["loss"] == pytest.approx(half["loss"], abs=1e-6)  # same init, data and rates
    assert b["cost"] == half["cost"] and b["spent"] == pytest.approx(0.2 * half["cost"])
    assert branched["loss"] == pytest.approx(plain["loss"], abs=1e-6)  # the stem resumed exactly
    assert branched["cost"] == plain["cost"]  # the run's own cost; the branch's is `spent`


def test_with_warmup_a_branch_matches_the_shorter_run_within_seed_noise(small_corpus) -> None:
    """Warmup lasts a fraction of the whole run in the stem, of the shorter run alone: the only
    difference, which must stay within the spread of the shorter run over seeds."""
    base = {**TINY, "corpus": str(small_corpus), "warmup_frac": 0.1}
    (b,) = train_moe({**base, "branches": [0.5]}, _ctx(3))["branches"]
    alone = [train_moe({**base, "tokens": TINY["tokens"] // 2}, _ctx(s))["loss"] for s in (3, 4, 5)]
    mean = sum(alone) / 3
    sd = math.sqrt(sum((x - mean) ** 2 for x in alone) / 2)
    assert abs(b["loss"] - alone[0]) <= max(2 * sd, 0.01 * alone[0]), (b["loss"], alone, sd)


def test_branches_need_a_wsd_schedule() -> None:
    with pytest.raises(ConfigFailure, match="wsd"):
        train_moe({**TINY, "schedule": "cosine", "branches": [0.5]}, _ctx())
