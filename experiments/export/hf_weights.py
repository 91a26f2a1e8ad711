"""A trained `MoETransformer` as a Hugging Face DBRX checkpoint (config.json + safetensors).

Why: it proves the swept model is DBRX (the converted checkpoint's logits match ours), and lets
a researcher continue from a trial's weights in the Hugging Face stack. Only renaming and
reshaping happen here; no value changes.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from experiments.export.hf_dbrx import dbrx_config
from models.model import MoETransformer

WEIGHTS_FILE = "model.safetensors"


def dbrx_state_dict(model: MoETransformer) -> dict[str, torch.Tensor]:
    """Our parameters under DbrxForCausalLM's names and layouts (contiguous CPU tensors).

    Experts: ours are w_in (E, d, 2h) = [gate | up] and w_out (E, h, d); DBRX stores
    w1, v1 (E*h, d) with gate = x @ w1[e].T, up = x @ v1[e].T, and w2 (E*h, d) with
    down = act @ w2[e].
    """
    cfg = model.cfg
    h = cfg.expert_hidden
    out: dict[str, torch.Tensor] = {"transformer.wte.weight": model.tok_emb.weight}
    for i, block in enumerate(model.blocks):
        p = f"transformer.blocks.{i}."
        w_in, w_out = block.moe.experts.w_in, block.moe.experts.w_out
        out |= {
            p + "norm_attn_norm.norm_1.weight": block.norm_attn.weight,
            p + "norm_attn_norm.attn.Wqkv.weight": block.attn.wqkv.weight,
            p + "norm_attn_norm.attn.out_proj.weight": block.attn.out_proj.weight,
            p + "norm_attn_norm.norm_2.weight": block.norm_moe.weight,
            p + "ffn.router.layer.weight": block.moe.router.gate.weight,
            p + "ffn.experts.mlp.w1": w_in[..., :h].transpose(1, 2).reshape(-1, cfg.d_model),
            p + "ffn.experts.mlp.v1": w_in[..., h:].transpose(1, 2).reshape(-1, cfg.d_model),
            p + "ffn.experts.mlp.w2": w_out.reshape(-1, cfg.d_model),
        }
    out["transformer.norm_f.weight"] = model.norm_f.weight
    out["lm_head.weight"] = model.lm_head.weight  # type: ignore[union-attr]  # untied: see dbrx_config
    return {k: v.detach().float().cpu().contiguous() for k, v in out.items()}


def save_hf_checkpoint(model: MoETransformer, out_dir: Path, **meta: object) -> Path:
    """Write `out_dir/config.json` and `out_dir/model.safetensors`; returns `out_dir`.

    `meta` (e.g. sweep, trial) goes under the config's `carbs` key. Raises ValueError where
    DBRX cannot express the model (see `hf_dbrx.dbrx_config`).
    """
    from safetensors.torch import save_file

    doc = dbrx_config(dataclasses.asdict(model.cfg))
    if meta:
        doc["carbs"] = dict(meta)
    tensors = dbrx_state_dict(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.json").write_text(json.dumps(doc, indent=2) + "\n")
    save_file(tensors, str(out_dir / WEIGHTS_FILE), metadata={"format": "pt"})
    return out_dir
