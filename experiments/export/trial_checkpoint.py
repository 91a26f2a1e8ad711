"""A finished trial's weights as a Hugging Face DBRX checkpoint, by training it again.

Why retrain: trials keep their losses and curves, not their weights (a sweep of hundreds of
models would store gigabytes nobody reads). A trial is a pure function of its params, its seed
and the corpus, so training it again with the seed the sweep gave it rebuilds its model; the
loss the rerun reaches, beside the stored one, shows it is the same model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from experiments.export.hf_weights import save_hf_checkpoint
from experiments.spec import stored_spec
from experiments.store.models import TrialStatus
from experiments.store.repository import Store


@dataclass(frozen=True)
class TrialCheckpoint:
    folder: Path  # config.json + model.safetensors
    loss: float  # the rerun's final validation loss
    stored_loss: float  # the trial's, as recorded by the sweep


def export_trial_checkpoint(
    store: Store, sweep_name: str, number: int, out_dir: Path, device: str = "cpu"
) -> TrialCheckpoint:
    """Retrain trial `number` of an MoE sweep and write it to `out_dir` as a DBRX checkpoint.

    Raises ValueError for a sweep that is not the built-in MoE workload, a trial that did not
    succeed, or a model DBRX cannot express."""
    from carbs.trial import TrialContext
    from experiments.runner import trial_seed
    from models.workload import train_moe_model

    sweep = store.require_sweep(sweep_name)
    spec = stored_spec(sweep.spec, sweep.name)
    if spec.workload.kind != "moe":
        raise ValueError(
            f"sweep {sweep_name!r} runs workload {spec.workload.kind!r}: only the built-in MoE "
            "workload (workload.kind: moe) trains a model DBRX can load"
        )
    found = [t for t in store.trials(sweep.id) if t.number == number]
    if not found or found[0].status != TrialStatus.SUCCEEDED or found[0].loss is None:
        raise ValueError(f"sweep {sweep_name!r} has no succeeded trial number {number}")
    trial = found[0]
    context = TrialContext(trial_id=trial.id, seed=trial_seed(spec, number), device=device)
    params = spec.space().full(trial.params)
    if (trial.metrics or {}).get("dtype") and params.get("precision", "auto") == "auto":
        # the dtype the trial's probe chose, not a new probe's (timings differ run to run)
        params["precision"] = trial.metrics["dtype"]
    result, model = train_moe_model(params, context)
    folder = save_hf_checkpoint(
        model.cpu(), out_dir, sweep=sweep_name, trial=number, val_loss=result["loss"]
    )
    return TrialCheckpoint(folder, float(result["loss"]), float(trial.loss))
