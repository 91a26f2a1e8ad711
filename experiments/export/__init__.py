"""Exports of a large-run pick in the formats production training loads.

`render_export(pick, fmt, sweep_name)` returns the file's text: "yaml" (this project's own
config, with the prediction and warnings), "llm-foundry" (an LLM Foundry training YAML with a
DBRX-style `ffn_config`) or "hf-dbrx" (a Hugging Face DBRX `config.json`, written in a folder of its own so that
`from_pretrained(folder)` finds it). `hf_weights.save_hf_checkpoint` writes a trained model's
weights beside such a config.
"""

from __future__ import annotations

from typing import Literal

from carbs.scaling.pick import LargeRunPick
from experiments.export.hf_dbrx import render_hf_dbrx
from experiments.export.llm_foundry import render_llm_foundry
from experiments.export.native import render_native

ExportFormat = Literal["yaml", "llm-foundry", "hf-dbrx"]
# format -> where it is written, relative to the sweep's output folder
EXPORT_FORMATS: dict[str, str] = {
    "yaml": "large_run.yaml",
    "llm-foundry": "llm_foundry.yaml",
    "hf-dbrx": "hf_dbrx/config.json",
}


def render_export(
    pick: LargeRunPick, fmt: ExportFormat, sweep_name: str, tokenizer: str | None = None
) -> str:
    """Render `pick` as `fmt`; EXPORT_FORMATS maps each format to its file. `tokenizer` (a hub
    name or a local tokenizer.json) is what the llm-foundry config trains with; it must fit
    the pick's vocab_size."""
    if fmt == "yaml":
        return render_native(pick, sweep_name)
    if fmt == "llm-foundry":
        return render_llm_foundry(pick, sweep_name, tokenizer)
    if fmt == "hf-dbrx":
        return render_hf_dbrx(pick, sweep_name)
    raise ValueError(f"unknown export format {fmt!r}; choose one of {sorted(EXPORT_FORMATS)}")


__all__ = ["EXPORT_FORMATS", "ExportFormat", "render_export"]
