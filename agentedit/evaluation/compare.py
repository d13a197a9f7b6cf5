"""Finished run folders as data: re-render a run's report from its stored rows (``agentedit eval report RUN``) and
put several runs in one table with intervals and paired differences (``agentedit eval compare RUN RUN...``).

Neither calls a model: the rows in cases.jsonl(.gz) hold every probe's score. Runs measured under different
protocols are refused (:func:`~agentedit.evaluation.protocols.check_comparable`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .cases import select_cases
from .config import RunConfig
from .loaders import load_dataset
from .protocols import check_comparable, get_protocol, protocol_of
from .report import (METRICS, aggregate, bar_plot, bootstrap_note, cell, dataset_sections, md_table, paired_lines, protocol_lines,
                     write_json, write_report)
from .rundir import read_rows
from .schema import EvalDataError
from .stats import DEFAULT_SEED, RESAMPLES, cases_digest, intervals, paired

logger = logging.getLogger(__name__)


@dataclass
class StoredRun:
    """A finished run folder: its configuration (run.json), stored rows and last report (results.json)."""

    path: Path
    config: RunConfig
    rows: list[dict[str, Any]]
    report: dict[str, Any]

    @property
    def label(self) -> str:
        return self.path.name


def open_run(folder: str | Path) -> StoredRun:
    path = Path(folder)
    if not (path / "run.json").exists():
        raise ConfigError(f"{path} is not an `agentedit eval` run folder (no run.json); give the folder a run wrote, "
                          "e.g. evals/results/<run-name>")
    saved = json.loads((path / "run.json").read_text("utf-8"))
    try:
        rows = read_rows(path)
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from None
    report = json.loads((path / "results.json").read_text("utf-8")) if (path / "results.json").exists() else {}
    return StoredRun(path, RunConfig(**saved["config"]), rows, report)


def probed_rows(run: StoredRun) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows the run's report covers and notes on how they were chosen. A folder may hold rows of cases a wider run
    probed earlier; the report covers this configuration's probed cases: recorded in results.json, else rebuilt from
    the dataset (seed, limit, probe_limit), else (no data folder) every stored case, with a note saying so."""
    cfg, keep, notes = run.config, {}, []
    for name in cfg.datasets:
        recorded = (run.report.get("datasets") or {}).get(name, {}).get("case_ids")
        if recorded is not None:
            keep[name] = set(recorded)
            continue
        try:
            cases = load_dataset(name, cfg.data_dir)
        except EvalDataError as exc:
            notes.append(f"{name}: every stored case is reported (the probed cases could not be rebuilt: {exc})")
            continue
        _, _, probed = select_cases(cases, seed=cfg.seed, limit=cfg.limit, probe_limit=cfg.probe_limit)
        keep[name] = {c.case_id for c in probed}
    rows = [r for r in run.rows if r["size"] != "all" or r["dataset"] not in keep or r["case_id"] in keep[r["dataset"]]]
    return rows, notes


def rerender(folder: str | Path, out: str | Path | None = None) -> dict[str, Any]:
    """Rebuild results.json, summary.md and the plots of a finished run from its stored rows (no model call), into
    ``out`` (default: the run folder). The run's own measurements (wall time, model calls) are kept from results.json."""
    run = open_run(folder)
    rows, notes = probed_rows(run)
    old, cfg = run.report, run.config
    protocol = get_protocol(cfg.protocol)
    seed = cfg.seed if cfg.seed is not None else DEFAULT_SEED
    kept = {k: old.get(k) for k in ("model", "backend", "embedder", "calibration_threshold", "machine", "started",
                                   "wall_s", "processes", "model_calls", "cache_hits", "model_calls_run", "cases")}
    report = {"suite": cfg.suite, **{k: v for k, v in kept.items() if v is not None}, "protocol": cfg.protocol,
              "protocol_detail": protocol.describe(cfg.scoring), "scoring": cfg.scoring, "max_tokens": cfg.max_tokens,
              "limit": cfg.limit, "seed": cfg.seed, "bootstrap": bootstrap_note(seed, RESAMPLES),
              "datasets": dataset_sections(rows, cfg.datasets, cfg.methods, cfg.memory_sizes, regime=protocol.regime,
                                           seed=seed),
              "rendered_from_rows": True, **({"notes": notes} if notes else {})}
    if "protocol_detail" not in old:
        report["protocol_inferred"] = True  # recorded as the protocol its configuration implies
    for key, default in (("model", cfg.model), ("backend", cfg.settings.model.spec.kind), ("embedder", "unknown"),
                         ("machine", "unknown"), ("started", "unknown"), ("wall_s", 0.0), ("model_calls", 0),
                         ("cache_hits", 0), ("cases", "cases.jsonl")):
        report.setdefault(key, default)
    target = Path(out) if out is not None else run.path
    target.mkdir(parents=True, exist_ok=True)
    write_report(target, report)
    with open(target / "summary.md", "a", encoding="utf-8") as fh:
        fh.write("\nRe-rendered from the stored rows by `agentedit eval report`" +
                 "".join(f"; {n}" for n in notes) + ".\n")
    return report


def compare(folders: list[str | Path], out: str | Path | None = None, *, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """One table over finished runs: per dataset, every (run, method) with its metrics and 95% intervals, and the
    paired differences of entries that share cases. Refuses runs of different protocols. Writes compare.json,
    compare.md and a plot per dataset to ``out`` when given."""
    if len(folders) < 2:
        raise ConfigError("compare needs at least two run folders")
    runs = [open_run(f) for f in folders]
    labels = [r.label if [x.label for x in runs].count(r.label) == 1 else str(r.path) for r in runs]
    reports = {}
    for label, run in zip(labels, runs):
        reports[label] = run.report or {"protocol": run.config.protocol, "scoring": run.config.scoring}
    check_comparable(reports)
    detail, inferred = protocol_of(next(iter(reports.values())))
    datasets: dict[str, Any] = {}
    for label, run in zip(labels, runs):
        rows, _ = probed_rows(run)
        for r in (r for r in rows if r["size"] == "all"):
            datasets.setdefault(r["dataset"], {}).setdefault(f"{label} · {r['method']}", []).append(r)
    models = {label: run.report.get("model") or run.config.model for label, run in zip(labels, runs)}
    result: dict[str, Any] = {"runs": labels, "models": models, "protocol": detail, "protocol_inferred": inferred,
                              "bootstrap": bootstrap_note(seed, RESAMPLES), "datasets": {}}
    for name, entries in datasets.items():
        table = {e: {**aggregate(rows), "cases_sha256": cases_digest(sorted({r["case_id"] for r in rows}))}
                 for e, rows in entries.items()}
        cis = {e: intervals(rows, seed=seed) for e, rows in entries.items()}
        keys = list(entries)
        pairs = [{"a": b, "b": a, "metric": kind, **got}
                 for i, a in enumerate(keys) for b in keys[i + 1:] if a.split(" · ")[0] != b.split(" · ")[0]
                 for kind in METRICS if (got := paired(entries[b], entries[a], kind, seed=seed))]
        result["datasets"][name] = {"entries": table, "intervals": cis, "paired": pairs}
    if out is not None:
        write_compare(Path(out), result)
    return result


def compare_markdown(result: dict[str, Any]) -> str:
    lines = [f"# Comparison of {len(result['runs'])} runs: {', '.join(result['runs'])}", "",
             *protocol_lines({"protocol_detail": result["protocol"]} if not result["protocol_inferred"] else
                             {"protocol": result["protocol"]["name"], "scoring": result["protocol"]["scoring"]}),
             "Models: " + "; ".join(f"{k}: {v}" for k, v in result.get("models", {}).items()) + ".", "",
             f"Intervals: {result['bootstrap']['interval']}, seed {result['bootstrap']['seed']}. Paired differences only "
             "between entries of different runs, over the probes both answered.", ""]
    for name, ds in result["datasets"].items():
        metrics = [m for m in METRICS if any(m in v for v in ds["entries"].values())]
        rows = [{"run · method": e, **{m: cell(v.get(m), ds["intervals"][e].get(m)) for m in metrics},
                 "n_cases": v.get("n_cases"), "cases": v["cases_sha256"]} for e, v in ds["entries"].items()]
        lines += [f"## {name}", "", md_table(rows, ["run · method", *metrics, "n_cases", "cases"]), ""]
        lines += paired_lines(ds["paired"])
    return "\n".join(lines)


def write_compare(out: Path, result: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "compare.json", result)
    (out / "compare.md").write_text(compare_markdown(result), "utf-8")
    for name, ds in result["datasets"].items():
        metrics = [m for m in METRICS if any(m in v for v in ds["entries"].values())]
        bar_plot(out / f"compare-{name}.png", ds["entries"], metrics, f"{name}: {', '.join(result['runs'])}",
                 errors=ds["intervals"])
