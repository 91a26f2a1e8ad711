import time

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from models.accounting import (
    activation_bytes,
    attention_flops_per_token,
    fits_device,
    flops_per_token,
    memory_estimate_bytes,
    param_counts,
    trained_tokens,
    training_flops,
    training_flops_for_params,
)
from models.config import MoEConfig, TrainConfig
from models.model import MoETransformer

SMALL = MoEConfig(
    d_model=16, n_layers=2, n_heads=4, n_kv_heads=2, n_experts=4, top_k=2, expert_hidden=8,
    vocab_size=32, seq_len=8,
)  # fmt: skip


def test_param_counts_match_a_hand_count_for_a_small_config():
    # Per layer: 2 norms 2*16; qkv 16*(4+2*2)*4 = 512; out 16*16 = 256; router 16*4 = 64;
    # experts 4 * 3*16*8 = 1536 (active 2 * 384 = 768). Final norm 16. Embeddings 2 * 32*16.
    layer_shared = 32 + 512 + 256 + 64
    counts = param_counts(SMALL)
    assert counts.embedding == 1024
    assert counts.non_embedding == 2 * (layer_shared + 1536) + 16
    assert counts.active_non_embedding == 2 * (layer_shared + 768) + 16
    assert counts.total == counts.embedding + counts.non_embedding
    assert counts.active == counts.embedding + counts.active_non_embedding


@pytest.mark.parametrize("tie", [False, True])
def test_param_counts_equal_the_built_models_numel(tie):
    cfg = MoEConfig(**{**SMALL.__dict__, "tie_embeddings": tie, "norm": "rmsnorm"})
    model = MoETransformer(cfg)
    assert param_counts(cfg).total == sum(p.numel() for p in model.parameters())


def test_flops_match_a_hand_count_for_a_small_config():
    # active matmul params: 2 * (512 + 256 + 64 + 2*384) + 16*32 = 3712
    # attention: 12 * n_layers * seq_len * n_heads * head_dim = 12 * 2 * 8 * 4 * 4 = 3072
    assert flops_per_token(SMALL) == 6 * 3712 + 3072
    assert training_flops(SMALL, 1000) == 1000 * (6 * 3712 + 3072)


def test_flops_match_torch_flop_counter_on_forward_and_backward():
    """With the per-expert loop and the math attention kernel every FLOP is an aten matmul
    that FlopCounterMode sees, so its count must equal the formula exactly."""
    torch.manual_seed(0)
    model = MoETransformer(SMALL, expert_impl="loop")
    idx = torch.randint(0, SMALL.vocab_size, (3, SMALL.seq_len))
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model.loss(idx, idx).total.backward()
    assert counter.get_total_flops() == flops_per_token(SMALL) * idx.numel()
    assert attention_flops_per_token(SMALL) > 0


def test_cost_of_params_uses_the_trainers_whole_step_rounding():
    params = {**SMALL.__dict__, "tokens": 1000, "batch_size": 4}
    assert trained_tokens(1000, 4, 8) == 992  # 31 steps of 32 tokens
    assert training_flops_for_params(params) == training_flops(SMALL, 992)


def test_dbrx_is_priced_instantly_with_its_published_sizes():
    dbrx = {
        "d_model": 6144, "n_layers": 40, "n_heads": 48, "n_kv_heads": 8, "n_experts": 16,
        "top_k": 4, "expert_hidden": 10752, "vocab_size": 100352, "seq_len": 32768,
        "rope_theta": 5e5, "clip_qkv": 8, "tokens": 12e12,
    }  # fmt: skip
    start = time.perf_counter()
    counts = param_counts(MoEConfig.from_params(dbrx))
    flops = training_flops_for_params(dbrx)
    assert time.perf_counter() - start < 0.05
    assert counts.total / 1e9 == pytest.approx(132, rel=0.01)
    assert counts.active / 1e9 == pytest.approx(36, rel=0.02)
    assert flops > 6 * counts.active * 12e12 * 0.9


def test_memory_estimate_grows_with_batch_and_rejects_what_cannot_fit():
    tc = TrainConfig(batch_size=8)
    small, big = (
        memory_estimate_bytes(SMALL, tc),
        memory_estimate_bytes(SMALL, TrainConfig(batch_size=64)),
    )
    assert big > small > 16 * param_counts(SMALL).total
    assert activation_bytes(SMALL, 8, "bfloat16") < activation_bytes(SMALL, 8, "float32")
    assert fits_device(SMALL, tc, 2**30)
    assert not fits_device(SMALL, tc, small // 2)
