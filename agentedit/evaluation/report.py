"""Aggregating probe rows into metrics, and writing results.json, summary.md and PNG plots."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .stats import METRICS, counted

if TYPE_CHECKING:
    from .config import RunConfig


def machine() -> str:
    """A short description of the machine the run used."""
    gpu = None
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001 - torch missing or broken: report the CPU only
        gpu = None
    cpu = f"{os.cpu_count()} cores, {platform.machine()}"
    return f"{cpu}, GPU {gpu}" if gpu else f"{cpu}, CPU only"


def aggregate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean score per probe kind (multihop: share of cases with any question solved), plus scope figures.

    In-scope probes of a case whose facts a later case restated (lifelong memory; ``restated_later`` rows) are left
    out and counted: the newer edit rightly supersedes the case's own.

    A metric the rows do not have is left out, not reported as 0.
    """
    out: dict[str, Any] = {}
    if not rows:
        return out
    kept = counted(rows)
    if len(kept) < len(rows):  # a later case restated these cases' facts: their own probes ask what no longer holds
        out["restated_later"] = len(rows) - len(kept)
        rows = kept
    for kind in METRICS:
        mine = [r for r in rows if r["kind"] == kind]
        if not mine:
            continue
        if kind == "multihop":
            groups: dict[str, bool] = {}
            for r in mine:
                groups[r["group"]] = groups.get(r["group"], False) or r["score"] >= 1.0
            out[kind] = round(sum(groups.values()) / len(groups), 4)
        else:
            out[kind] = round(sum(r["score"] for r in mine) / len(mine), 4)
    inscope = [r for r in rows if r["kind"] != "locality"]
    outscope = [r for r in rows if r["kind"] == "locality"]
    if inscope:
        out["edit_applied"] = round(sum(bool(r["own_applied"]) for r in inscope) / len(inscope), 4)
    if outscope:
        out["untouched"] = round(sum(not r["applied"] for r in outscope) / len(outscope), 4)
    # Of every edit injected into single-fact probes, the share that was an in-scope probe's own edit.
    single = [r for r in rows if r["kind"] in ("reliability", "generality", "locality")]
    injected = sum(len(r["applied"]) for r in single)
    if injected:
        out["scope_precision"] = round(sum(bool(r["own_applied"]) for r in single if r["kind"] != "locality") / injected, 4)
    if any("model_calls" in r for r in rows):
        out["calls_per_probe"] = round(sum(r.get("model_calls", 1) for r in rows) / len(rows), 3)
    timed = [r["ms"] for r in rows if isinstance(r.get("ms"), (int, float))]
    if timed:
        out["s_per_probe"] = round(sum(timed) / len(timed) / 1000.0, 3)
    if any(r.get("decomposed") for r in rows):
        out["decomposed"] = round(sum(bool(r.get("decomposed")) for r in rows) / len(rows), 4)
    out["n_cases"] = len({r["case_id"] for r in rows})
    out["n_probes"] = len(rows)
    return out


BACKEND_LABELS = {"llamacpp": "llama.cpp server", "hf": "transformers", "api": "litellm"}
MODEL_LABELS = {"qwen2.5-coder-0.5b": "qwen2.5-coder-0.5b-instruct (gguf q4_k_m)", "smollm2": "smollm2-135m-instruct (gguf q4_1)"}


def model_label(cfg: RunConfig) -> str:
    """The model as a report names it: the embedded server's GGUFs by model and quantisation, others by their spec."""
    spec = cfg.settings.model.spec
    if spec.kind == "llamacpp":
        label = next((v for k, v in MODEL_LABELS.items() if spec.name.startswith(k)), None)
        if label:
            return label
    return cfg.model


def dataset_sections(rows: list[dict[str, Any]], datasets: list[str], methods: list[str], memory_sizes: list[int], *,
                     regime: str, seed: int) -> dict[str, Any]:
    """Per dataset: every method's metrics over the probed cases (``methods``) with their 95% cluster-bootstrap
    intervals (``intervals``), paired differences between the methods (``paired``), the probed case ids and their
    digest, and the metrics over the first cases at each memory size (``by_size``)."""
    from .stats import cases_digest, intervals, paired

    out = {}
    order = ["none", *[x for x in methods if x != "none"]]
    for name in datasets:
        mine = [r for r in rows if r["dataset"] == name]
        everything = [r for r in mine if r["size"] == "all"]
        per = {m: [r for r in everything if r["method"] == m] for m in order}
        case_ids = sorted({r["case_id"] for r in everything}, key=lambda c: (len(c), c))
        pairs = []
        for i, a in enumerate(order):
            for b in order[i + 1:]:
                for kind in METRICS:
                    got = paired(per[b], per[a], kind, seed=seed) if per[a] and per[b] else None
                    if got:
                        pairs.append({"a": b, "b": a, "metric": kind, **got})
        out[name] = {
            "dataset": name, "n_cases": len(case_ids),
            "n_edits_in_memory": None if regime == "single" else "all cases' edits",
            "methods": {m: aggregate(per[m]) for m in order},
            "intervals": {m: intervals(per[m], seed=seed) for m in order},
            "paired": pairs, "cases_sha256": cases_digest(case_ids), "case_ids": case_ids,
            "by_size": {s: {m: aggregate([r for r in mine if r["method"] == m and r["size"] == str(s)])
                            for m in methods} for s in sorted(set(memory_sizes))},
        }
    return out


def build_report(cfg: RunConfig, rows: list[dict[str, Any]], *, embedder: str, started: str, wall_s: float,
                 processes: int, model_calls: int, cache_hits: int, model_calls_run: int, cases: str) -> dict[str, Any]:
    """results.json's content: the run's setting, its protocol, the bootstrap's seed, what the runner measured, then
    per dataset the metrics of every method (see :func:`dataset_sections`)."""
    from ..scope import default_calibration
    from .protocols import get_protocol
    from .stats import DEFAULT_SEED, RESAMPLES

    protocol = get_protocol(cfg.protocol)
    seed = cfg.seed if cfg.seed is not None else DEFAULT_SEED
    datasets = dataset_sections(rows, cfg.datasets, cfg.methods, cfg.memory_sizes, regime=protocol.regime, seed=seed)
    return {"suite": cfg.suite, "model": model_label(cfg), "backend": BACKEND_LABELS[cfg.settings.model.spec.kind],
            "protocol": cfg.protocol, "protocol_detail": protocol.describe(cfg.scoring), "scoring": cfg.scoring,
            "max_tokens": cfg.max_tokens, "limit": cfg.limit, "seed": cfg.seed, "bootstrap": bootstrap_note(seed, RESAMPLES),
            "embedder": embedder, "calibration_threshold": default_calibration().threshold,
            "machine": machine(), "started": started, "wall_s": wall_s, "processes": processes, "model_calls": model_calls,
            "cache_hits": cache_hits, "model_calls_run": model_calls_run, "datasets": datasets, "cases": cases}


def bootstrap_note(seed: int, resamples: int) -> dict[str, Any]:
    return {"seed": seed, "resamples": resamples, "interval": "95% percentile, cases resampled whole (cluster bootstrap)",
            "paired_test": "paired cluster bootstrap of the difference; two-sided sign-flip permutation p-value"}


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


def bar_plot(path: Path, methods: dict[str, dict[str, Any]], metrics: list[str], title: str,
             errors: dict[str, dict[str, list[float]]] | None = None) -> None:
    """Grouped bars, one group per metric; ``errors[method][metric] = [lo, hi]`` draws each bar's interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(methods)
    x = np.arange(len(metrics))
    width = 0.8 / max(1, len(names))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(metrics) + 2), 4))
    for i, name in enumerate(names):
        vals = [methods[name].get(m, np.nan) if methods[name].get(m) is not None else np.nan for m in metrics]
        ci = (errors or {}).get(name, {})
        yerr = np.array([[max(0.0, v - ci[m][0]) if m in ci and v == v else 0.0 for m, v in zip(metrics, vals)],
                         [max(0.0, ci[m][1] - v) if m in ci and v == v else 0.0 for m, v in zip(metrics, vals)]])
        bars = ax.bar(x + i * width - 0.4 + width / 2, vals, width, label=name, yerr=yerr if ci else None,
                      capsize=2, error_kw={"elinewidth": 0.8})
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(x, metrics)
    ax.set_ylim(0, 1.1)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def line_plot(path: Path, xs: list[Any], series: dict[str, list[float]], *, xlabel: str, ylabel: str, title: str,
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
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def roc_plot(path: Path, curves: dict[str, tuple[list[float], list[float]]], title: str, *, max_fpr: float | None = None) -> None:
    """ROC curves: ``curves[name] = (false positive rates, true positive rates)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4.5))
    for name, (fpr, tpr) in curves.items():
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
    ax.axvline(0.02, color="grey", lw=0.8, ls="--", label="2% false positives")
    if max_fpr is not None:
        ax.set_xlim(0, max_fpr)
    ax.set_xlabel("false positive rate (out-of-scope queries given an edit)")
    ax.set_ylabel("recall (in-scope queries given their edit)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def cell(value: Any, ci: list[float] | None, *, ci_digits: int = 3) -> str:
    """A metric with its interval, ``0.812 [0.751, 0.868]`` (``ci_digits`` decimals for the interval)."""
    if not isinstance(value, (int, float)):
        return ""
    return f"{value:.3f} [{ci[0]:.{ci_digits}f}, {ci[1]:.{ci_digits}f}]" if ci else f"{value:.3f}"


def protocol_lines(report: dict[str, Any]) -> list[str]:
    """The protocol block of a summary: name, scoring, locality, regime, metric definitions (and whether inferred)."""
    from .protocols import protocol_of

    p, inferred = protocol_of(report)
    lines = [f"**Protocol `{p['name']}`** ({p['title']}{'; ' + p['source'] if p.get('source') else ''}): scoring "
             f"**{p['scoring']}**; locality {p['locality']}; regime {p['regime']}: {p['batch']}."]
    if inferred:
        lines.append(f"(This run predates recorded protocols; `{p['name']}` is the protocol its configuration implies.)")
    if p.get("notes"):
        lines.append(f"Note: {p['notes']}.")
    lines += [f"- {m}: {text}" for m, text in p["metrics"].items()]
    return [*lines, ""]


def paired_lines(pairs: list[dict[str, Any]]) -> list[str]:
    if not pairs:
        return []
    rows = [{"comparison": f"{p['a']} − {p['b']}", "metric": p["metric"], "difference": f"{p['diff']:+.3f}",
             "95% CI": f"[{p['ci'][0]:+.3f}, {p['ci'][1]:+.3f}]", "p": f"{p['p']:.4f}", "cases": p["n_cases"],
             "verdict": "within noise" if p["within_noise"] else ("higher" if p["diff"] > 0 else "lower")}
            for p in pairs]
    return ["Paired differences on the shared cases (a − b; within noise: the difference's interval contains 0):", "",
            md_table(rows, ["comparison", "metric", "difference", "95% CI", "p", "cases", "verdict"]), ""]


def write_report(out: Path, report: dict[str, Any]) -> None:
    """results.json, summary.md and plots for an evaluation run (cases.jsonl is written as it goes)."""
    write_json(out / "results.json", report)
    boot = report.get("bootstrap")
    lines = [f"# Evaluation: suite `{report['suite']}`", "",
             f"Model {report['model']} via {report['backend']}; protocol **{report['protocol']}**; scoring "
             f"**{report['scoring']}**; embedder {report['embedder']}; machine: {report['machine']}; started "
             f"{report['started']}; wall time {report['wall_s']} s" +
             (f" over {report['processes']} processes (stopped and resumed)" if report.get("processes", 1) > 1 else "") +
             f"; {report.get('model_calls_run', report['model_calls'])} model calls "
             f"({report['cache_hits']} identical requests answered from the run's cache in the last process).", "",
             *protocol_lines(report),
             "Locality = agreement with the unedited model (`none`) on the same probe. `edit_applied`: share of "
             "in-scope probes where the case's own edit was injected (scope recall); `untouched`: share of locality probes "
             "that reached the model with no edit (scope specificity); `scope_precision`: of the edits injected into "
             "single-fact probes, the share that was an in-scope probe's own edit.", ""]
    if boot:
        lines += [f"Intervals: {boot['interval']}, {boot['resamples']} resamples, seed {boot['seed']}; "
                  f"{boot['paired_test']}. The probed cases are listed in results.json (`case_ids`).", ""]
    for name, ds in report["datasets"].items():
        metrics = [m for m in METRICS if any(m in v for v in ds["methods"].values())]
        extra = [c for c in ("scope_precision", "decomposed", "calls_per_probe", "s_per_probe")
                 if any(c in v for v in ds["methods"].values())]
        cols = ["method", *metrics, "edit_applied", "untouched", *extra, "n_cases", "n_probes"]
        cis = ds.get("intervals") or {}
        table = [{"method": m, **v, **{k: cell(v.get(k), cis.get(m, {}).get(k)) for k in metrics}}
                 for m, v in ds["methods"].items()]
        digest = f" (case ids sha256 `{ds['cases_sha256']}`)" if ds.get("cases_sha256") else ""
        lines += [f"## {name}", "", f"{ds['n_cases']} cases{digest}.", "", md_table(table, cols), ""]
        lines += paired_lines(ds.get("paired") or [])
        plot = f"{name}-methods.png"
        bar_plot(out / plot, {m: v for m, v in ds["methods"].items()}, metrics,
                 f"{name}: {report['model']}, {report['protocol']}", errors=cis or None)
        lines += [f"![{name}]({plot})", ""]
        if ds.get("by_size"):
            sizes = list(ds["by_size"])
            for metric in ("reliability", "locality"):
                series = {m: [ds["by_size"][s].get(m, {}).get(metric, float("nan")) for s in sizes]
                          for m in next(iter(ds["by_size"].values()))}
                if all(all(v != v for v in ys) for ys in series.values()):
                    continue
                plot = f"{name}-{metric}-by-size.png"
                line_plot(out / plot, [int(s) for s in sizes], series, xlabel="edits in memory", ylabel=metric,
                          title=f"{name}: {metric} against edits in memory")
                lines += [f"![{metric} by size]({plot})", ""]
            size_rows = [{"edits": s, "method": m, **v} for s in sizes for m, v in ds["by_size"][s].items()]
            lines += ["Against the number of edits in memory (probes of the first cases only):", "",
                      md_table(size_rows, ["edits", "method", *metrics, "edit_applied", "untouched", "n_probes"]), ""]
    (out / "summary.md").write_text("\n".join(lines), "utf-8")
