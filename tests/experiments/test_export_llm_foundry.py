"""The llm-foundry export is a training config LLM Foundry accepts, of the recipe that was swept.

The acceptance test runs LLM Foundry's own config code (`scripts/llmfoundry_check.py`) in the
isolated venv `scripts/setup_llmfoundry.sh` builds (`.ci/run` does, in CI); the other tests pin
the mapping of each swept setting and the refusals, and need only this project.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from carbs.scaling.pick import LargeRunPick
from experiments.export import render_export
from experiments.export.llm_foundry import llm_foundry_config
from experiments.export.llm_foundry_keys import check_model_keys
from models.schedule import lr_multiplier

ROOT = Path(__file__).resolve().parents[2]
PARAMS = {
    "d_model": 256,
    "n_layers": 3,
    "n_heads": 4,
    "n_kv_heads": 2,
    "n_experts": 8,
    "top_k": 2,
    "expert_hidden": 384,
    "vocab_size": 2048,
    "seq_len": 128,
    "learning_rate": 1.2e-3,
    "batch_size": 32,
    "tokens": 4.0e7,
    "warmup_frac": 0.05,
    "weight_decay": 0.1,
    "rope_theta": 5e5,
    "clip_qkv": 8.0,
    "z_loss_coef": 0.001,
    "min_lr_ratio": 0.05,
}


def _pick(**changes: object) -> LargeRunPick:
    return LargeRunPick({**PARAMS, **changes}, 2.9, (2.8, 3.05), 1e19, {"laws": {}}, ["a warning"])


def _doc(pick: LargeRunPick, tokenizer: str | None = None) -> dict:
    return yaml.safe_load(render_export(pick, "llm-foundry", "demo", tokenizer))


def test_the_swept_recipe_carries_over(tmp_path: Path) -> None:
    doc = _doc(_pick(schedule="wsd", decay_frac=0.25))
    model, ffn = doc["model"], doc["model"]["ffn_config"]
    assert ffn["moe_world_size"] == 1  # MegaBlocks' argument builder pops it without a default
    assert ffn["moe_zloss_weight"] == 0.001 and ffn["moe_loss_weight"] == 0.01
    assert model["learned_pos_emb"] is False and model["attn_config"]["rope"] is True
    assert model["attn_config"]["rope_theta"] == 5e5 and model["attn_config"]["clip_qkv"] == 8.0
    assert model["init_config"] == {
        "name": "normal_",
        "init_std": 0.02,
        "emb_init_std": 0.02,
        "init_div_is_residual": True,
    }
    steps = round(4.0e7 / (32 * 128))
    sched = doc["scheduler"]
    assert sched["name"] == "inv_sqrt_with_warmup" and sched["alpha_f_decay"] == 1.0
    assert sched["alpha_f_cooldown"] == 0.05  # min_lr_ratio, not a default
    assert sched["t_cooldown"] == f"{steps - round(0.75 * steps)}ba"
    assert _doc(_pick())["scheduler"]["alpha_f"] == 0.05  # cosine
    opt = doc["optimizer"]
    assert opt["weight_decay"] == pytest.approx(1.2e-3 * 0.1)  # Composer's is not lr-scaled
    assert opt["param_groups"] == [{"param_str_match": "norm", "weight_decay": 0.0}]
    assert doc["eval_loader"]["dataset"]["split"] == "val" and doc["eval_interval"] == "50ba"
    assert doc["save_folder"].startswith("./checkpoints/") and doc["autoresume"] is True
    assert doc["fsdp_config"]["sharding_strategy"] == "FULL_SHARD"


def test_tokenizer_must_fit_the_vocabulary(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match="'gpt2' has 50257 tokens but the pick's vocab_size is 2048"
    ):
        _doc(_pick(), "gpt2")
    assert (
        _doc(_pick(vocab_size=50304), "gpt2")["tokenizer"]["name"] == "${variables.tokenizer_name}"
    )
    assert _doc(_pick(vocab_size=50304), "gpt2")["variables"]["tokenizer_name"] == "gpt2"
    from tokenizers import Tokenizer, models

    local = tmp_path / "tok"
    local.mkdir()
    Tokenizer(models.WordLevel({f"t{i}": i for i in range(1500)}, unk_token="t0")).save(
        str(local / "tokenizer.json")
    )
    assert _doc(_pick(), str(local))["variables"]["tokenizer_name"] == str(local)
    with pytest.raises(ValueError, match="1500 tokens but the pick's vocab_size is 1024"):
        _doc(_pick(vocab_size=1024), str(local))
    with pytest.raises(ValueError, match="cannot be checked"):
        _doc(_pick(), "someone/unknown-tokenizer")
    _, warnings = llm_foundry_config(_pick(), "demo", None)
    assert any("no tokenizer was given" in w for w in warnings)


def test_settings_without_an_llm_foundry_equivalent_are_named_in_warnings() -> None:
    text = render_export(_pick(fail_at_step=3, corpus="my.txt"), "llm-foundry", "demo")
    header = [line for line in text.splitlines() if line.startswith("# warning: ")]
    assert any("fail_at_step=3" in line for line in header)
    assert any("my.txt" in line for line in header)  # the data placeholder names the corpus
    assert "# warning: a warning" in header  # the pick's own warnings


def test_keys_llm_foundry_would_ignore_are_refused() -> None:
    doc, _ = llm_foundry_config(_pick(), "demo", None)
    doc["model"]["ffn_config"]["moe_zloss_wieght"] = 0.001
    with pytest.raises(
        ValueError, match=r"model.ffn_config: LLM Foundry would ignore \['moe_zloss_wieght'\]"
    ):
        check_model_keys(doc["model"])


def _llmf_python() -> Path | None:
    venv = Path(os.environ.get("CARBS_LLMF_VENV", ROOT / ".venv-llmf"))
    python = venv / "bin" / "python"
    return python if python.exists() else None


@pytest.fixture(scope="module")
def foundry_check(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """LLM Foundry's verdict on four files: the cosine and WSD exports (written by the CLI's
    code path), one with a top-level typo and one without moe_world_size (the old export)."""
    python = _llmf_python()
    if python is None:
        reason = "no LLM Foundry venv: run scripts/setup_llmfoundry.sh (.ci/run does)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("llmf")
    files = {
        "cosine": render_export(_pick(), "llm-foundry", "demo", None),
        "wsd": render_export(
            _pick(schedule="wsd", norm="rmsnorm", grad_clip=0.0), "llm-foundry", "demo"
        ),
    }
    typo = yaml.safe_load(files["cosine"]) | {"save_intervall": "10ba"}
    old = yaml.safe_load(files["cosine"])
    del old["model"]["ffn_config"]["moe_world_size"]
    files |= {"typo": yaml.safe_dump(typo), "old": yaml.safe_dump(old)}
    for name, text in files.items():
        (out / f"{name}.yaml").write_text(text)
    run = subprocess.run(
        [str(python), str(ROOT / "scripts" / "llmfoundry_check.py")]
        + [str(out / f"{name}.yaml") for name in files],
        capture_output=True,
        text=True,
        timeout=300,
    )
    sys.stdout.write(run.stdout)
    sections = run.stdout.split("== ")
    verdicts = {Path(s.splitlines()[0]).stem: s for s in sections[1:]}
    assert set(verdicts) == set(files), run.stdout + run.stderr[-3000:]
    return verdicts


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cosine", "wsd"])
def test_llm_foundry_accepts_the_export(foundry_check: dict[str, str], name: str) -> None:
    verdict = foundry_check[name]
    assert "FAILED" not in verdict, verdict
    for step in (
        "TrainConfig and validate_config accept it",
        "MPTConfig:",
        "no ffn_config key dropped",
        "FSDPConfig",
    ):
        assert step in verdict
    assert "learned_pos_emb=False" in verdict and "moe_zloss_weight=0.001" in verdict


@pytest.mark.slow
@pytest.mark.parametrize(("name", "schedule"), [("cosine", "cosine"), ("wsd", "wsd")])
def test_llm_foundry_schedules_the_learning_rate_as_our_trainer(
    foundry_check: dict[str, str], name: str, schedule: str
) -> None:
    """Composer calls the scheduler with the batches done, so its batch s is our step s - 1."""
    line = next(x for x in foundry_check[name].splitlines() if x.startswith("schedule "))
    got = json.loads(line.removeprefix("schedule "))
    steps = round(4.0e7 / (32 * 128))
    for s, theirs in zip(got["steps"], got["lr_mult"], strict=True):
        if s == 0:
            continue  # Composer starts warmup at 0
        ours = lr_multiplier(s - 1, steps, 0.05, schedule, 0.05, 0.2)
        assert theirs == pytest.approx(ours, abs=0.01), (s, theirs, ours)


@pytest.mark.slow
def test_llm_foundry_refuses_a_typo_and_the_old_export(foundry_check: dict[str, str]) -> None:
    assert "Unused parameters ['save_intervall']" in foundry_check["typo"]
    assert "FAILED: KeyError: 'moe_world_size'" in foundry_check["old"]
