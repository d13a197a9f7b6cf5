"""Writing a small benchmark's report: results.json, summary.md and one bar plot under evals/results/<name>/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

RESULTS = Path(__file__).resolve().parent / "results"


def write(name: str, result: Mapping[str, Any], lines: Sequence[str], bars: Mapping[str, float], *, title: str,
          ylabel: str) -> Path:
    """The report folder; ``bars`` are drawn as one horizontal bar chart (skipped without matplotlib)."""
    out = RESULTS / name
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return out
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(bars) + 1.2))
    ax.barh(list(bars), list(bars.values()))
    ax.invert_yaxis()
    ax.set_xlabel(ylabel)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out / "plot.png", dpi=110)
    plt.close(fig)
    return out
