"""Validate llm-foundry training YAMLs with LLM Foundry's own code (run in .venv-llmf).

    .venv-llmf/bin/python scripts/llmfoundry_check.py llm_foundry.yaml [...]

For each file, the steps `llmfoundry/command_utils/train.py:train` takes before it needs GPUs
and data: the YAML into LLM Foundry's `TrainConfig` (unknown top-level keys refused),
`validate_config`, the model section into `MPTConfig` (its `_validate_config`), the optimizer
and scheduler through LLM Foundry's builders, `fsdp_config` into Composer's `FSDPConfig`, and
`ffn_config` through LLM Foundry's MegaBlocks argument builder (`config_megablocks_moe_args`).
MegaBlocks itself only builds with CUDA, so the builder here meets a stand-in `megablocks`
whose `Arguments` has MegaBlocks 0.10's fields (experiments/export/llm_foundry_keys.py): the
builder's own pops and defaults run for real, and any key it would drop is reported.
Prints "== FILE", then one line per check or "FAILED: ..." at a file's first failure; exits 1
when any file failed.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import inspect
import json
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _import_llmfoundry() -> None:
    """Import LLM Foundry on CPU torch. PyPI's torchvision 0.28 is CUDA-linked, so its compiled
    ops do not load beside the CPU torch; Composer imports torchvision's Python parts only, and
    torchvision's import registers fake kernels for the missing ops, which fails. Skipping that
    registration while torchvision imports is the only change; no LLM Foundry code is touched."""
    import torch.library

    real = torch.library.register_fake
    torch.library.register_fake = lambda *a, **k: lambda fn: fn  # type: ignore[assignment]
    try:
        import torchvision  # noqa: F401
    finally:
        torch.library.register_fake = real
    import llmfoundry  # noqa: F401


def _keys_module() -> types.ModuleType:
    path = ROOT / "experiments" / "export" / "llm_foundry_keys.py"
    spec = importlib.util.spec_from_file_location("llm_foundry_keys", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _megablocks_stand_in(fields: frozenset[str]) -> None:
    """`megablocks.layers.arguments.Arguments` with MegaBlocks' field names (all optional)."""
    Arguments = dataclasses.make_dataclass(  # noqa: N806
        "Arguments", [(name, object, dataclasses.field(default=None)) for name in sorted(fields)]
    )
    mb = types.ModuleType("megablocks")
    mb.layers = types.ModuleType("megablocks.layers")  # type: ignore[attr-defined]
    mb.layers.arguments = types.ModuleType("megablocks.layers.arguments")  # type: ignore[attr-defined]
    mb.layers.arguments.Arguments = Arguments  # type: ignore[attr-defined]
    sys.modules["megablocks"] = mb


def check_key_lists() -> None:
    """Our lists of what LLM Foundry reads are what the installed LLM Foundry reads."""
    from llmfoundry.models.mpt import MPTConfig
    from llmfoundry.models.utils.config_defaults import attn_config_defaults

    keys = _keys_module()
    mpt_args = set(inspect.signature(MPTConfig.__init__).parameters) - {"self", "kwargs"}
    assert keys.MODEL_KEYS - {"name"} <= mpt_args, keys.MODEL_KEYS - {"name"} - mpt_args
    assert keys.ATTN_KEYS - {"kv_n_heads"} <= set(attn_config_defaults)
    print(f"ok: key lists match llm-foundry (MPTConfig takes {len(mpt_args)} arguments)")


def check_file(path: Path) -> None:
    from composer.utils.parallelism import FSDPConfig
    from llmfoundry.command_utils.train import validate_config
    from llmfoundry.models.mpt import MPTConfig
    from llmfoundry.models.utils.config_moe_args import config_megablocks_moe_args
    from llmfoundry.utils.builders import build_optimizer, build_scheduler
    from llmfoundry.utils.config_utils import (
        TRAIN_CONFIG_KEYS,
        TrainConfig,
        make_dataclass_and_log_config,
    )
    from omegaconf import OmegaConf as om
    from torch import nn

    cfg = om.create(om.load(str(path)))
    _, train_cfg = make_dataclass_and_log_config(cfg, TrainConfig, TRAIN_CONFIG_KEYS, "all")
    validate_config(train_cfg)
    print(f"ok: {path.name}: TrainConfig and validate_config accept it")

    model_cfg = copy.deepcopy(train_cfg.model)
    assert model_cfg.pop("name") == "mpt_causal_lm", "expected the MPT model class"
    mpt = MPTConfig(**model_cfg)
    ffn = mpt.ffn_config
    print(
        f"ok: MPTConfig: d_model={mpt.d_model} n_layers={mpt.n_layers} "
        f"kv_n_heads={mpt.attn_config['kv_n_heads']} rope_impl={mpt.attn_config['rope_impl']} "
        f"learned_pos_emb={mpt.learned_pos_emb} ffn_type={ffn['ffn_type']} "
        f"experts={ffn['moe_num_experts']} top_k={ffn['moe_top_k']} "
        f"moe_zloss_weight={ffn.get('moe_zloss_weight')} moe_world_size={ffn.get('moe_world_size')}"
    )

    keys = _keys_module()
    _megablocks_stand_in(keys.MEGABLOCKS_ARGUMENTS)
    given = set(ffn)
    built = config_megablocks_moe_args(
        copy.deepcopy(ffn), mpt.d_model, mpt.expansion_ratio, mpt.n_layers, lambda **kw: None
    )
    args = built["args"]
    dropped = sorted(given - set(dataclasses.asdict(args)) - keys.FFN_FOUNDRY_KEYS)
    assert not dropped, f"config_megablocks_moe_args would drop {dropped}"
    print(
        f"ok: config_megablocks_moe_args: hidden_size={args.hidden_size} "
        f"ffn_hidden_size={args.ffn_hidden_size} moe_loss_weight={args.moe_loss_weight} "
        f"moe_zloss_weight={args.moe_zloss_weight}; no ffn_config key dropped"
    )

    class Tiny(nn.Module):  # parameter names as MPT's: norms match "norm"
        def __init__(self) -> None:
            super().__init__()
            self.norm_1 = nn.LayerNorm(4, bias=False)
            self.proj = nn.Linear(4, 4, bias=False)

    opt_cfg = copy.deepcopy(train_cfg.optimizer)
    opt = build_optimizer(Tiny(), opt_cfg.pop("name"), opt_cfg)
    decays = sorted(g["weight_decay"] for g in opt.param_groups)
    sched_cfg = copy.deepcopy(train_cfg.scheduler)
    sched = build_scheduler(sched_cfg.pop("name"), sched_cfg)
    FSDPConfig(**train_cfg.fsdp_config)
    print(
        f"ok: {type(opt).__name__} (weight decay per group {decays}), "
        f"{type(sched).__name__}, FSDPConfig"
    )
    print("schedule " + json.dumps(_schedule(sched, train_cfg.max_duration)))


def _schedule(sched: object, max_duration: str, points: int = 200) -> dict[str, list]:
    """The scheduler's learning-rate multiplier at up to `points` batches, as Composer calls it
    (with the number of batches done)."""
    from composer.core import Time, Timestamp

    total = Time.from_timestring(max_duration)
    n = int(total.value)
    steps = sorted({round(i * (n - 1) / (points - 1)) for i in range(points)} | {0, 1, n - 1})
    values = [
        float(sched(types.SimpleNamespace(max_duration=total, timestamp=Timestamp(batch=s))))
        for s in steps
    ]
    return {"steps": steps, "lr_mult": values}


def main(argv: list[str]) -> int:
    _import_llmfoundry()
    import llmfoundry

    print(f"llm-foundry {llmfoundry.__version__} imported")
    if argv == ["--import-only"]:
        return 0
    check_key_lists()
    failed = 0
    for name in argv:
        print(f"== {name}")
        try:
            check_file(Path(name))
        except Exception as exc:  # noqa: BLE001 - report each file's first failure
            print(f"FAILED: {type(exc).__name__}: {exc}")
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
