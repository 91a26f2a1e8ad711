import pytest
import torch

from models.config import MoEConfig
from models.model import MoETransformer
from models.moe import (
    GroupedExperts,
    MoEFeedForward,
    Router,
    grouped_matmul,
    load_balancing_loss,
    moe_dispatch,
)

CFG = MoEConfig(
    d_model=16, n_layers=2, n_heads=4, n_kv_heads=2, n_experts=4, top_k=2, expert_hidden=8,
    vocab_size=64, seq_len=12,
)  # fmt: skip


def test_model_output_shapes_and_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    model = MoETransformer(CFG)
    idx = torch.randint(0, CFG.vocab_size, (3, CFG.seq_len))
    logits, lb, z = model(idx)
    assert logits.shape == (3, CFG.seq_len, CFG.vocab_size)
    assert lb.shape == z.shape == ()
    model.loss(idx, idx).total.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_router_picks_top_k_distinct_experts_with_weights_summing_to_one():
    torch.manual_seed(0)
    router = Router(CFG)
    x = torch.randn(50, CFG.d_model)
    weights, idx, _ = router(x)
    assert idx.shape == weights.shape == (50, CFG.top_k)
    assert all(len(set(row.tolist())) == CFG.top_k for row in idx)
    probs = router.gate(x).softmax(-1)
    assert torch.equal(idx, probs.topk(CFG.top_k, dim=-1).indices)
    torch.testing.assert_close(weights.sum(-1), torch.ones(50))


def test_dispatch_equals_naive_per_token_sum_over_chosen_experts():
    torch.manual_seed(0)
    experts = GroupedExperts(CFG, impl="loop")
    for p in experts.parameters():
        torch.nn.init.normal_(p, std=0.3)
    x = torch.randn(20, CFG.d_model)
    weights = torch.rand(20, CFG.top_k)
    idx = torch.stack([torch.randperm(CFG.n_experts)[: CFG.top_k] for _ in range(20)])
    out = moe_dispatch(x, weights, idx, CFG.n_experts, experts)

    def one(e: int, v: torch.Tensor) -> torch.Tensor:
        gate, up = (v @ experts.w_in[e]).chunk(2, dim=-1)
        return (torch.nn.functional.silu(gate) * up) @ experts.w_out[e]

    naive = torch.stack(
        [
            sum(weights[t, j] * one(int(idx[t, j]), x[t]) for j in range(CFG.top_k))
            for t in range(20)
        ]
    )
    torch.testing.assert_close(out, naive, rtol=1e-5, atol=1e-6)


def test_load_balancing_loss_is_one_and_minimal_at_uniform_routing():
    T, E = 64, 4
    uniform_probs = torch.full((T, E), 1 / E)
    uniform_idx = torch.arange(T).remainder(E).unsqueeze(1)
    assert load_balancing_loss(uniform_probs, uniform_idx).item() == pytest.approx(1.0)
    torch.manual_seed(0)
    for _ in range(20):
        logits = torch.randn(T, E) * 3
        probs = logits.softmax(-1)
        idx = probs.topk(1, dim=-1).indices
        assert load_balancing_loss(probs, idx).item() >= 1.0
    collapsed = torch.zeros(T, E)
    collapsed[:, 0] = 1
    assert load_balancing_loss(collapsed, torch.zeros(T, 1, dtype=torch.long)).item() == E


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_grouped_matmul_equals_per_expert_products_including_empty_experts(dtype):
    torch.manual_seed(0)
    x = torch.randn(10, 16, dtype=dtype)
    w = torch.randn(4, 16, 8, dtype=dtype)
    counts = torch.tensor([3, 0, 7, 0])
    loop = torch.cat([c @ w_e for c, w_e in zip(x.split(counts.tolist()), w, strict=True)])
    grouped = grouped_matmul(x, w, counts)
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(grouped.float(), loop.float(), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [None, torch.bfloat16])
def test_moe_layer_outputs_and_gradients_agree_between_expert_paths(dtype):
    """The loop path's hand-written backward against autograd through torch._grouped_mm."""
    torch.manual_seed(0)
    layers = {impl: MoEFeedForward(CFG, impl) for impl in ("grouped", "loop")}
    layers["loop"].load_state_dict(layers["grouped"].state_dict())
    for layer in layers.values():
        for p in layer.parameters():
            torch.nn.init.normal_(p, std=0.3)
    layers["loop"].load_state_dict(layers["grouped"].state_dict())
    x = torch.randn(2, 9, CFG.d_model)
    x = x.requires_grad_()
    outs, grads = {}, {}
    for impl, layer in layers.items():
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            outs[impl], _ = layer(x)
        grads[impl] = torch.autograd.grad(outs[impl].square().sum(), [x, *layer.parameters()])
    rtol, atol = (1e-4, 1e-5) if dtype is None else (2e-2, 2e-2)
    torch.testing.assert_close(outs["loop"], outs["grouped"], rtol=rtol, atol=atol)
    for g_grouped, g_loop in zip(grads["grouped"], grads["loop"], strict=True):
        assert g_loop.dtype == g_grouped.dtype
        scale = g_grouped.abs().max().item()
        torch.testing.assert_close(g_grouped, g_loop, rtol=rtol, atol=atol * scale)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_grouped_path_matches_cpu_loop_path_in_outputs_and_gradients():
    """torch._grouped_mm on the GPU (bf16 autocast) against the CPU loop path (fp32)."""
    cfg = MoEConfig(d_model=64, n_heads=4, n_kv_heads=2, n_experts=8, top_k=2, expert_hidden=128)
    torch.manual_seed(0)
    cpu = MoEFeedForward(cfg, "loop")
    gpu = MoEFeedForward(cfg, "grouped").cuda()
    gpu.load_state_dict(cpu.state_dict())
    x = torch.randn(4, 32, cfg.d_model)
    x_gpu = x.cuda().requires_grad_()
    x_cpu = x.clone().requires_grad_()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        y_gpu, _ = gpu(x_gpu)
    y_cpu, _ = cpu(x_cpu)
    torch.testing.assert_close(y_gpu.float().cpu(), y_cpu, rtol=3e-2, atol=3e-3)
    g_gpu = torch.autograd.grad(y_gpu.float().square().sum(), [x_gpu, *gpu.parameters()])
    g_cpu = torch.autograd.grad(y_cpu.square().sum(), [x_cpu, *cpu.parameters()])
    for a, b in zip(g_gpu, g_cpu, strict=True):
        torch.testing.assert_close(a.cpu(), b, rtol=5e-2, atol=5e-2 * b.abs().max().item())
