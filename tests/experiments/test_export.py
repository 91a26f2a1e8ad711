"""Exports load in the tools production training uses, and describe the same model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from carbs.scaling.pick import LargeRunPick
from experiments.export import EXPORT_FORMATS, render_export

PARAMS = {
    "d_model": 256,
    "n_layers": 3,
    "n_heads": 4,
    "n_kv_heads": 2,
    "n_experts": 8,
    "top_k": 2,
    "expert_hidden": 384,
    "vocab_size": 1000,
    "seq_len": 128,
    "learning_rate": 1.2e-3,
    "batch_size": 32,
    "tokens": 4.0e8,
    "warmup_frac": 0.02,
    "rope_theta": 5e5,
    "clip_qkv": 8.0,
}


# a model small enough to build and run in well under a second
TINY = {
    "d_model": 64,
    "n_layers": 2,
    "n_heads": 4,
    "n_kv_heads": 2,
    "n_experts": 4,
    "top_k": 2,
    "expert_hidden": 32,
    "vocab_size": 97,
    "seq_len": 16,
}


@pytest.fixture
def pick() -> LargeRunPick:
    return LargeRunPick(dict(PARAMS), 2.9, (2.8, 3.05), 1e19, {"laws": {}}, ["a warning"])


def test_hf_export_builds_a_dbrx_model_with_our_parameter_count(pick: LargeRunPick) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from models.accounting import param_counts
    from models.config import MoEConfig

    cfg = transformers.DbrxConfig(**json.loads(render_export(pick, "hf-dbrx", "demo")))
    assert cfg.ffn_config.moe_num_experts == 8 and cfg.ffn_config.moe_top_k == 2
    assert cfg.attn_config.kv_n_heads == 2
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(cfg)
    ours = param_counts(MoEConfig.from_params(PARAMS)).total
    assert sum(p.numel() for p in model.parameters()) == ours


@pytest.mark.parametrize("clip_qkv", [0.0, 8.0])
def test_hf_export_folder_loads_with_from_pretrained_and_trains(
    pick: LargeRunPick, tmp_path: Path, clip_qkv: float
) -> None:
    """The written folder is what `from_pretrained` reads, and the model runs forward and
    backward (clip_qkv 0, no clipping, failed in transformers 5 as `clip_qkv: null`)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    pick.params.update(TINY, clip_qkv=clip_qkv)
    folder = tmp_path / EXPORT_FORMATS["hf-dbrx"]
    folder.parent.mkdir()
    folder.write_text(render_export(pick, "hf-dbrx", "demo"))
    cfg = transformers.AutoConfig.from_pretrained(folder.parent)
    assert cfg.model_type == "dbrx" and cfg.carbs["predicted_loss"] == 2.9
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(cfg)
    ids = torch.randint(0, TINY["vocab_size"], (2, TINY["seq_len"]))
    out = model(input_ids=ids, labels=ids)
    assert out.logits.shape == (2, TINY["seq_len"], TINY["vocab_size"])
    out.loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.transformer.blocks[0].ffn.experts.mlp.w1.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("change", "match"),
    [({"norm": "rmsnorm"}, "LayerNorm"), ({"tie_embeddings": True}, "tied embeddings")],
)
def test_hf_export_refuses_what_dbrx_cannot_express(
    pick: LargeRunPick, change: dict, match: str
) -> None:
    pick.params.update(change)
    with pytest.raises(ValueError, match=match):
        render_export(pick, "hf-dbrx", "demo")


def test_llm_foundry_export_has_a_dbrx_style_moe_block(pick: LargeRunPick) -> None:
    doc = yaml.safe_load(render_export(pick, "llm-foundry", "demo"))
    ffn = doc["model"]["ffn_config"]
    assert ffn["ffn_type"] == "mb_dmoe"
    assert (ffn["moe_num_experts"], ffn["moe_top_k"], ffn["ffn_hidden_size"]) == (8, 2, 384)
    assert doc["model"]["attn_config"]["kv_n_heads"] == 2
    assert doc["optimizer"]["lr"] == pytest.approx(1.2e-3)
    steps = round(4.0e8 / (32 * 128))
    assert doc["max_duration"] == f"{steps}ba"
    assert doc["global_train_batch_size"] == 32


def test_native_export_round_trips_params_and_prediction(pick: LargeRunPick) -> None:
    doc = yaml.safe_load(render_export(pick, "yaml", "demo"))
    assert doc["params"] == PARAMS
    assert doc["prediction"]["ci90"] == [2.8, 3.05]
    assert doc["warnings"] == ["a warning"]


def test_unknown_format_names_the_choices(pick: LargeRunPick) -> None:
    with pytest.raises(ValueError, match="choose one of"):
        render_export(pick, "onnx", "demo")  # type: ignore[arg-type]
    assert set(EXPORT_FORMATS) == {"yaml", "llm-foundry", "hf-dbrx"}


def test_export_refuses_heads_that_do_not_divide_d_model(pick: LargeRunPick) -> None:
    pick.params["n_heads"] = 3
    with pytest.raises(ValueError, match="does not divide"):
        render_export(pick, "hf-dbrx", "demo")
