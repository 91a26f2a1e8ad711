"""A trained MoETransformer, converted to a Hugging Face DBRX checkpoint, is the same model:
DbrxForCausalLM loaded with `from_pretrained` gives our logits on the same tokens."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from experiments.export.hf_weights import WEIGHTS_FILE, save_hf_checkpoint  # noqa: E402
from models.config import MoEConfig, TrainConfig  # noqa: E402
from models.model import MoETransformer  # noqa: E402
from models.trainer import make_optimizer  # noqa: E402

# tolerance for float32 logits computed in two different operation orders
ATOL = 1e-4


def _trained(cfg: MoEConfig, steps: int = 12) -> tuple[MoETransformer, float, float]:
    """A tiny model trained for real on a repeating token pattern; (model, first, last loss)."""
    torch.manual_seed(0)
    model = MoETransformer(cfg, "loop")
    opt = make_optimizer(model, TrainConfig(learning_rate=1e-2, weight_decay=0.0), "cpu")
    g = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(steps):
        start = torch.randint(0, cfg.vocab_size, (8, 1), generator=g)
        x = (start + torch.arange(cfg.seq_len + 1) * 7) % cfg.vocab_size
        parts = model.loss(x[:, :-1], x[:, 1:])
        parts.total.backward()
        opt.step()
        opt.zero_grad()
        losses.append(parts.ce.item())
    return model.eval(), losses[0], losses[-1]


@pytest.fixture(scope="module")
def trained() -> MoETransformer:
    """Trained with clip_qkv=0.3, a bound its activations reach (so clipping is exercised)."""
    cfg = MoEConfig(
        d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, n_experts=4, top_k=2,
        expert_hidden=32, vocab_size=97, seq_len=32, rope_theta=500.0, clip_qkv=0.3,
    )  # fmt: skip
    model, first, last = _trained(cfg)
    assert last < 0.7 * first  # it learned something: the weights are not the init
    return model


@pytest.mark.parametrize("clip_qkv", [0.3, 0.0])
def test_trained_weights_load_into_dbrx_with_matching_logits(
    trained: MoETransformer, tmp_path: Path, clip_qkv: float
) -> None:
    model = MoETransformer(dataclasses.replace(trained.cfg, clip_qkv=clip_qkv), "loop").eval()
    model.load_state_dict(trained.state_dict())
    folder = save_hf_checkpoint(model, tmp_path / "hf", sweep="demo", trial=3)
    assert (folder / WEIGHTS_FILE).stat().st_size > 0
    hf = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    assert hf.config.carbs == {"sweep": "demo", "trial": 3}
    ids = torch.randint(0, 97, (3, 32), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ours, theirs = model(ids)[0], hf(input_ids=ids).logits
        qkv = model.blocks[0].attn.wqkv(model.blocks[0].norm_attn(model.tok_emb(ids)))
    assert (qkv.abs() > 0.3).any()  # so the two cases differ, and each matches DBRX's
    diff = (ours - theirs).abs().max().item()
    print(
        f"clip_qkv={clip_qkv}: logits max |ours - DBRX| = {diff:.3g} (max |logit| {ours.abs().max():.3g})"
    )
    assert diff < ATOL
    assert torch.equal(ours.argmax(-1), theirs.argmax(-1))
