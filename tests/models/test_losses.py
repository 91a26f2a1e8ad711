import pytest
import torch
import torch.nn.functional as F

from models import losses
from models.config import MoEConfig
from models.losses import linear_cross_entropy
from models.model import MoETransformer

CFG = MoEConfig(
    d_model=16, n_layers=2, n_heads=4, n_kv_heads=2, n_experts=4, top_k=2, expert_hidden=8,
    vocab_size=64, seq_len=12,
)  # fmt: skip


@pytest.mark.parametrize("dtype", [None, torch.bfloat16])
@pytest.mark.parametrize("chunk", [losses.CHUNK_ELEMENTS, 100])  # one chunk, then many
def test_fused_head_loss_and_gradients_equal_the_plain_cross_entropy(dtype, chunk, monkeypatch):
    monkeypatch.setattr(losses, "CHUNK_ELEMENTS", chunk)
    torch.manual_seed(0)
    x = torch.randn(30, 16, requires_grad=True)
    w = (0.3 * torch.randn(50, 16)).requires_grad_()
    t = torch.randint(0, 50, (30,))
    autocast = torch.autocast("cpu", dtype=dtype, enabled=dtype is not None)
    with autocast:
        fused = linear_cross_entropy(x, w, t)
    g_fused = torch.autograd.grad(3 * fused, (x, w))
    with autocast:
        plain = F.cross_entropy(F.linear(x, w).float(), t)
    g_plain = torch.autograd.grad(3 * plain, (x, w))
    tol = 1e-5 if dtype is None else 2e-2
    assert fused.dtype == torch.float32
    torch.testing.assert_close(fused, plain, rtol=tol, atol=tol)
    for a, b in zip(g_fused, g_plain, strict=True):
        assert a.dtype == b.dtype == torch.float32
        torch.testing.assert_close(a, b, rtol=tol, atol=tol * b.abs().max().item())


def test_model_loss_equals_cross_entropy_of_its_logits_and_keeps_no_grad_in_eval():
    torch.manual_seed(0)
    model = MoETransformer(CFG)
    idx = torch.randint(0, CFG.vocab_size, (3, CFG.seq_len))
    logits, _, _ = model(idx)
    plain = F.cross_entropy(logits.view(-1, CFG.vocab_size), idx.view(-1))
    torch.testing.assert_close(model.loss(idx, idx).ce, plain)
    with torch.no_grad():
        assert not model.loss(idx, idx).ce.requires_grad
