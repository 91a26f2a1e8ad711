"""What every figure file shares: PNG + SVG output, and log axes labelled in plain numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import LogFormatter  # noqa: E402


def save(fig: Any, stem: Path) -> list[Path]:
    """Write `<stem>.png` and `<stem>.svg` (labels kept inside: bbox tight) and close it."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(out[0], dpi=120, bbox_inches="tight")
    with plt.rc_context({"svg.fonttype": "none"}):  # text stays text: searchable, editable
        fig.savefig(out[1], bbox_inches="tight")
    plt.close(fig)
    return out


def log_y(ax: Any) -> None:
    """A log y axis labelled 3, 4, 6 rather than 3x10^0: losses span less than a decade."""
    ax.set_yscale("log")
    fmt = LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 1))
    ax.yaxis.set_major_formatter(fmt)
    ax.yaxis.set_minor_formatter(fmt)
