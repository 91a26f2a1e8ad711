"""The compiled model against the eager one: same loss and gradients for one training step."""

from __future__ import annotations

import shutil

import pytest
import torch

from models.config import MoEConfig
from models.model import MoETransformer

CFG = MoEConfig(
    d_model=16, n_layers=1, n_heads=4, n_kv_heads=2, n_experts=4, top_k=2, expert_hidden=8,
    vocab_size=64, seq_len=12,
)  # fmt: skip


@pytest.mark.slow  # ~30 s of inductor compilation on a cold cache, ~5 s warm
@pytest.mark.skipif(shutil.which("g++") is None, reason="inductor on CPU needs a C++ compiler")
def test_compiled_blocks_give_the_eager_loss_and_gradients() -> None:
    torch.manual_seed(0)
    eager = MoETransformer(CFG)
    compiled = MoETransformer(CFG)
    compiled.load_state_dict(eager.state_dict())
    compiled.compile_blocks()
    idx = torch.randint(0, CFG.vocab_size, (2, CFG.seq_len))
    losses = {}
    for name, model in (("eager", eager), ("compiled", compiled)):
        parts = model.loss(idx, idx)
        parts.total.backward()
        losses[name] = parts.total.detach()
    torch.testing.assert_close(losses["compiled"], losses["eager"], rtol=1e-5, atol=1e-6)
    for (name, p), q in zip(eager.named_parameters(), compiled.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-6, msg=name)
