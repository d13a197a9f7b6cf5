"""Shared helpers for benchmark scripts: result folders, JSON/Markdown writing, plots, machine facts."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def data_dir(arg: str | None = None) -> Path:
    """``--data-dir``, else ``$AGENTEDIT_DATA``, else ``../shared/datasets`` beside the repository."""
    path = Path(arg or os.environ.get("AGENTEDIT_DATA") or ROOT.parent / "shared" / "datasets")
    if not path.is_dir():
        raise SystemExit(f"data directory {path} not found; pass --data-dir or set AGENTEDIT_DATA")
    return path


def machine() -> str:
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # torch absent or broken: report the CPU only
        gpu = None
    cpu = f"{os.cpu_count()} cores, {platform.machine()}"
    return f"{cpu}, GPU {gpu}" if gpu else f"{cpu}, CPU only"


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", "utf-8")
    os.replace(tmp, path)


def md_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3f}"
        return "" if v is None else str(v)

    out = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    out += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(out)


def bar_plot(path: Path, methods: dict[str, dict[str, float]], metrics: list[str], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(methods)
    x = np.arange(len(metrics))
    width = 0.8 / max(1, len(names))
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(metrics) + 2), 4))
    for i, name in enumerate(names):
        vals = [methods[name].get(m, np.nan) for m in metrics]
        bars = ax.bar(x + i * width - 0.4 + width / 2, vals, width, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(x, metrics)
    ax.set_ylim(0, 1.08)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def line_plot(path: Path, xs: list[int], series: dict[str, list[float]], *, xlabel: str, ylabel: str, title: str,
              logx: bool = True) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, ys in series.items():
        ax.plot(xs, ys, marker="o", label=name)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
