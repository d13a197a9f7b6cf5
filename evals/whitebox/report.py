"""results.json, summary.md, cases.jsonl and the PNG plots of a white-box run."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .measure import Meter, editor_configs


def cost_plot(path: Path, methods: dict[str, dict[str, Any]], title: str) -> None:
    """Seconds per edit and peak memory, one bar per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(methods)
    fig, axes = plt.subplots(1, 2, figsize=(9, 0.6 * len(names) + 1.8))
    for ax, key, label in zip(axes, ("seconds_per_edit", "peak_memory_gb"), ("seconds per edit", "peak memory (GB)")):
        vals = [float(methods[n].get(key) or 0.0) for n in names]
        bars = ax.barh(names, vals)
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
        ax.set_xlabel(label)
        ax.invert_yaxis()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write(out: Path, report: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    from agentedit.evaluation.report import bar_plot, md_table, write_json

    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", report)
    with open(out / "cases.jsonl", "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    methods = report["methods"]
    metrics = [m for m in ("reliability", "generality", "locality") if any(m in v for v in methods.values())]
    cols = ["method", "protocol", *metrics, "n_edits", "seconds_per_edit", "peak_memory_gb", "note"]
    lines = [f"# White-box editors: {report['model']}", "",
             f"Backend {report['backend']} ({report['dtype']} on {report['device']}); machine: {report['machine']}; "
             f"started {report['started']}; wall time {report['wall_s']} s.", "",
             f"Statistics: {report['corpus']} ({report['stats_s']} s for layers {report['stats_layers']}, cached on disk "
             "afterwards and not counted in seconds per edit).", ""]
    if metrics:
        lines += [f"Scoring: {report['scoring']}.", ""]
    lines += [md_table([{"method": m, **v} for m, v in methods.items()], cols), ""]
    if metrics:
        bar_plot(out / "methods.png", methods, metrics, f"{report['model']}: CounterFact, {report['n_cases']} cases")
        lines += ["![methods](methods.png)", ""]
    edited = {m: v for m, v in methods.items() if v.get("seconds_per_edit") is not None}
    if edited:
        cost_plot(out / "cost.png", edited, f"{report['model']}: {report['dtype']} on {report['device']}")
        lines += ["![cost](cost.png)", ""]
    curves = {m: v["query_ms_by_edits"] for m, v in methods.items() if v.get("query_ms_by_edits")}
    if curves:  # inference overhead as edits accumulate
        points = sorted({int(n) for c in curves.values() for n in c})
        lines += [f"Milliseconds per query (one teacher-forced pass), unedited: {report.get('query_ms_unedited')}; "
                  "after N sequential edits:", "",
                  md_table([{"method": m, **{str(n): c.get(str(n)) for n in points}} for m, c in curves.items()],
                           ["method", *map(str, points)]), ""]
    lines += report.get("notes", [])
    (out / "summary.md").write_text("\n".join(lines) + "\n", "utf-8")


def build_report(args: argparse.Namespace, backend: Any, label: str, started: str, t0: float, load_s: float,
                 cases: list[dict[str, Any]], corpus: Any, stats_s: float, layers: list[int], results: dict[str, Any],
                 quality: bool, methods: list[str], meter: Meter) -> dict[str, Any]:
    """results.json's content after the methods measured so far."""
    import torch

    from agentedit.evaluation.report import machine

    return {"suite": "whitebox", "dataset": "counterfact-edit" if quality else "timing prompts",
            "model": label, "backend": "transformers (agentedit.backends.local)", "device": backend.device,
            "dtype": str(next(backend.model.parameters()).dtype).replace("torch.", ""),
            "scoring": "teacher-forced top-1 token accuracy (EasyEdit protocol); locality against the unedited model"
            if quality else "none (random weights: timing and memory only)",
            "machine": machine(), "torch_threads": torch.get_num_threads(), "started": started,
            "wall_s": round(time.perf_counter() - t0, 1), "load_s": load_s, "n_cases": len(cases),
            "corpus": (f"{corpus.id} ({args.corpus_file})" if args.corpus_file
                       else f"{corpus.id} (text sampled from the unedited model at temperature 1)"), "stats_s": stats_s,
            "stats_layers": layers, "methods": results,
            "configs": {m: asdict(c) for m, c in editor_configs(args).items() if m in methods}, "cases": "cases.jsonl",
            "notes": ["Locality is the share of the unedited model's top-1 tokens on the locality prompt that the "
                      "edit keeps. " + ("Peak memory on a CPU is the process's peak RSS while the method ran (which includes "
                      "the loaded model)." if meter.per_method else "Peak memory on a CPU is the process's peak RSS so "
                      "far, so it only grows from row to row.")]}
