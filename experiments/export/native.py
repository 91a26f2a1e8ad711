"""This project's own large-run file: the full config plus what we predict and why."""

from __future__ import annotations

from typing import Any

import yaml

from carbs.scaling.pick import LargeRunPick


def render_native(pick: LargeRunPick, sweep_name: str) -> str:
    d = pick.to_dict()
    doc: dict[str, Any] = {
        "sweep": sweep_name,
        "target_flops": d["target_flops"],
        "params": d["params"],
        "prediction": {"loss": d["predicted_loss"], "ci90": d["predicted_loss_ci"]},
        "warnings": d["warnings"],
    }
    header = f"# Large run picked from sweep {sweep_name!r} by carbs.scaling\n"
    return header + yaml.safe_dump(doc, sort_keys=False)
