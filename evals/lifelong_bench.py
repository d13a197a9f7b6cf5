"""Lifelong editing of a local model: T edits one after another, never retracted, then the probes.

Every white-box method (``rome`` applied sequentially, ``alphaedit``, ``grace``, ``wise``, ``recipe``) and the
in-context route (``agentedit``) run on the same cases through the evaluation harness (protocol
``wise-lifelong``, teacher-forced, as the WISE/GRACE papers measure; or ``lifelong`` with
generation-match). Probes run after all T edits; ``--curve`` adds the same measurement after the
first 10, 100, ... edits (the first cases' probes, the earliest edits: the ones that decay).
A stopped run resumes: probes already answered are kept (cases.jsonl) and the deltas already
computed are reloaded from the run folder (``deltas/<method>/``), so no edit is computed twice.

Reports: reliability, generality, locality per method and T; seconds per edit (computed edits
only); milliseconds per probe (query-time overhead as edits accumulate, next to ``none``, the
unedited model); the process's peak memory.

    python evals/lifelong_bench.py --model qwen2.5-coder-0.5b-instruct --dataset zsre --edits 100 --curve 10
    python evals/lifelong_bench.py --model qwen2.5-coder-0.5b-instruct --dataset zsre --edits 1000 --curve 10,100

``recipe`` needs its prompt encoder and sentinel trained for the model first (``agentedit --model hf:<model>
--store recipe-<model> train-recipe``); ``--recipe-dir`` names the folder they were saved in (``stores/<store>/recipe``).

Writes evals/results/<run-name>/ (lifelong.json, lifelong.md, lifelong.png, and the harness's run folder in run/).
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agentedit.settings import offline_defaults  # noqa: E402

logger = logging.getLogger("lifelong_bench")
DEFAULT_METHODS = "rome,alphaedit,grace,wise,agentedit"


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b-instruct", help="an hf: model (short name, directory, hub id)")
    ap.add_argument("--dataset", default="zsre", help="zsre, counterfact-edit, ...")
    ap.add_argument("--edits", type=int, default=100, help="T: the number of cases whose edits go in, one after another")
    ap.add_argument("--curve", default="10,100,1000", help="also measure after the first N edits (N < T)")
    ap.add_argument("--curve-probe-cases", type=int, default=20, help="cases probed at each curve point")
    ap.add_argument("--probe-cases", type=int, default=None, help="probe only the first N cases after all T (default all)")
    ap.add_argument("--methods", default=DEFAULT_METHODS, help="comma-separated: rome, memit, ft, alphaedit, grace, wise, "
                    "recipe (needs --recipe-dir), agentedit, none, ...")
    ap.add_argument("--recipe-dir", default=None, help="the folder of a trained RECIPE encoder and sentinel "
                    "(stores/<store>/recipe after `agentedit --model hf:... train-recipe`)")
    ap.add_argument("--locality-audit", default=None, help="a JSONL of hand-checked locality probes (case_id, label: "
                    "same | ambiguous | other); default evals/data/<dataset>_locality_audit.jsonl when it exists")
    ap.add_argument("--report-only", action="store_true",
                    help="re-write the report of the finished run --run-name from its run folder, without the model "
                         "(with --locality-audit FILE: into a subfolder named after FILE, beside the original report)")
    ap.add_argument("--config", action="append", default=[], metavar="METHOD:KEY=VALUE,...",
                    help="an editor's settings, e.g. wise:shard_size=20,subspaces=4 (fields of its config dataclass)")
    ap.add_argument("--stats-corpus", default=None, metavar="FILE",
                    help="a UTF-8 text file for the key statistics of rome/memit/alphaedit (default: text sampled from "
                         "the model); evals/make_stats_corpora.py writes offline ones")
    ap.add_argument("--scoring", choices=["teacher-forced", "generation-match"], default="teacher-forced")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--run-name", default=None)
    ap.add_argument("--out-dir", default=str(Path(__file__).resolve().parent / "results"))
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    offline_defaults()
    from agentedit.evaluation.config import RunConfig
    from agentedit.evaluation.runner import Runner

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    curve = sorted({int(c) for c in args.curve.split(",") if c.strip() and int(c) < args.edits})
    protocol = "wise-lifelong" if args.scoring == "teacher-forced" else "lifelong"
    model = args.model if ":" in args.model else f"hf:{args.model}"
    settings = None
    configs = editor_configs(args.config)
    if "recipe" in methods:
        from agentedit.parametric import RECIPEConfig

        if not args.recipe_dir and not args.report_only:  # a report of a finished run loads no model
            raise SystemExit("--methods recipe needs --recipe-dir: the folder `agentedit train-recipe` saved the encoder in")
        configs["recipe"] = RECIPEConfig(folder=args.recipe_dir)
    if configs or args.stats_corpus:
        from agentedit.settings import Settings

        settings = Settings.from_env(model, editor_configs=configs, stats_corpus=args.stats_corpus)
    cfg = RunConfig([args.dataset], methods, model=model, limit=args.edits, seed=args.seed, protocol=protocol,
                    scoring=args.scoring, memory_sizes=curve, size_probe_cases=args.curve_probe_cases,
                    probe_limit=args.probe_cases, data_dir=args.data_dir, max_tokens=16, settings=settings)
    name = args.run_name or f"lifelong-{Path(args.model).name}-{args.dataset}-{args.edits}"
    out = Path(args.out_dir) / name
    t0 = time.perf_counter()

    def progress(desc: str, done: int, total: int) -> None:
        if done == total or done % 25 == 0:
            logger.info("%s: %d/%d", desc, done, total)

    if args.report_only:
        return report_again(out, args, methods, curve)
    runner = Runner(cfg, out / "run", progress=progress)
    try:
        report = runner.run()
    finally:
        runner.close()
    result = summarise(report, out / "run", args, methods, curve, time.perf_counter() - t0)
    write(out, result)
    print(json.dumps(result["table"], indent=2))
    return 0


def report_again(out: Path, args: argparse.Namespace, methods: list[str], curve: list[int]) -> int:
    """The report of a finished run, summarised again from its run folder (another locality audit, say); the wall time
    and peak memory stay those of the run."""
    if not (out / "run" / "results.json").exists():
        raise SystemExit(f"--report-only: {out / 'run'} holds no finished run; run it first without --report-only")
    before = json.loads((out / "lifelong.json").read_text()) if (out / "lifelong.json").exists() else {}
    report = json.loads((out / "run" / "results.json").read_text())
    result = summarise(report, out / "run", args, methods, curve, float(before.get("wall_s", 0.0)))
    result["peak_rss_gb"] = before.get("peak_rss_gb", result["peak_rss_gb"])
    where = out / Path(args.locality_audit).stem if args.locality_audit else out
    write(where, result)
    print(json.dumps(result["table"], indent=2))
    return 0


def editor_configs(specs: list[str]) -> dict[str, Any]:
    """``{"wise": WISEConfig(shard_size=20, ...)}`` from ``["wise:shard_size=20,..."]``; each value takes the type of
    the field's default."""
    import dataclasses

    from agentedit.parametric import METHODS

    out: dict[str, Any] = {}
    for spec in specs:
        name, _, body = spec.partition(":")
        kind = METHODS.get(name).config_type
        fields = {f.name: f for f in dataclasses.fields(kind)}
        values: dict[str, Any] = {}
        for item in filter(None, body.split(",")):
            key, _, raw = item.partition("=")
            if key not in fields:
                raise SystemExit(f"--config {spec}: {name} has no setting {key!r}; it has {', '.join(fields)}")
            values[key] = setting_value(fields[key].default, raw)
        out[name] = kind(**values)
    return out


def setting_value(default: Any, raw: str) -> Any:
    """``raw`` as the type of the field's default; a field whose default is None takes None, an int or the text."""
    if isinstance(default, bool):
        return raw.lower() in ("1", "true", "yes")
    if default is not None:
        return type(default)(raw)
    if raw in ("", "none"):
        return None
    return int(raw) if raw.lstrip("-").isdigit() else raw


def summarise(report: dict[str, Any], run: Path, args: argparse.Namespace, methods: list[str], curve: list[int],
              wall_s: float) -> dict[str, Any]:
    from agentedit.evaluation.lifelong import edit_seconds
    from agentedit.evaluation.rundir import read_rows

    section = report["datasets"][args.dataset]
    rows = read_rows(run)
    ms: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        ms.setdefault((r["method"], r["size"]), []).append(float(r.get("ms") or 0.0))
    audit = read_audit(args.locality_audit, args.dataset)
    collided = collisions(args, curve)
    table = []
    for method in ["none", *(m for m in methods if m != "none")]:  # the unedited model once, first
        timing = edit_seconds(run / "deltas" / method) if method != "none" else {}
        by_size = {str(k): v for k, v in section["by_size"].items()}  # int keys in memory, str once in JSON
        points = [(str(s), by_size.get(str(s), {}).get(method, {})) for s in curve]
        points.append(("all", section["methods"].get(method, {})))
        for size, metrics in points:
            t = args.edits if size == "all" else int(size)
            q = ms.get((method, size), [])
            clean = audited_locality(rows, audit, method, size)
            local = [r for r in rows if r["method"] == method and r["size"] == size and r["kind"] == "locality"]
            apart = [float(r["score"]) for r in local if str(r["case_id"]) not in collided[size]]
            table.append({"method": method, "T": t, **{k: metrics.get(k) for k in ("reliability", "generality", "locality")},
                          "locality_audited": round(sum(clean) / len(clean), 3) if clean else None,
                          "audited_probes": len(clean),
                          "locality_uncollided": round(sum(apart) / len(apart), 3) if apart else None,
                          "collided_probes": len(local) - len(apart),
                          "ms_per_probe": round(statistics.median(q), 1) if q else None, "probes": len(q),
                          "seconds_per_edit": timing.get("seconds_per_edit"),
                          "edits_computed": timing.get("edits_computed")})
    return {"model": args.model, "dataset": args.dataset, "T": args.edits, "curve": curve, "scoring": args.scoring,
            "protocol": report["protocol_detail"], "audit": audit_summary(audit, args), "methods": methods, "table": table, "wall_s": round(wall_s, 1),
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
            "configs": args.config, "stats_corpus": Path(args.stats_corpus).name if args.stats_corpus else "sampled",
            "machine": report.get("machine"), "notes": [
                "T = all: every case's probes after all T edits; smaller T: the first cases' probes after the first T edits",
                "locality_audited: locality on the probes a hand check labelled another relation than the edit's "
                "(the audit file's 'other'); the rest ask the edited subject's edited relation, where an edit that "
                "generalises must change the answer",
                "locality_uncollided: locality without the probes that name the subject of another case's edit "
                "among the T (collided_probes: those left out); with thousands of edits a dataset's unrelated probe "
                "is often about a subject another case edits, where the answer must change",
                "seconds_per_edit: edits computed in this process or an earlier one of the run (reloaded ones not counted)",
                "ms_per_probe: the median over the probes (the first probe of a parametric method also waits for its "
                "T edits to be applied, which the median leaves out); it includes retrieval for the in-context route"]}


def collisions(args: argparse.Namespace, curve: list[int]) -> dict[str, set[str]]:
    """Per size ("all" and each curve point), the probed cases whose locality probe names the subject of another case
    in memory (:func:`~agentedit.evaluation.cases.locality_collisions`), with the runner's choice of cases."""
    from agentedit.evaluation.cases import locality_collisions, select_cases, sized_runs
    from agentedit.evaluation.loaders import load_dataset

    chosen = select_cases(load_dataset(args.dataset, args.data_dir), seed=args.seed, limit=args.edits,
                          probe_limit=args.probe_cases)
    return {size: locality_collisions(probed, memory)
            for size, probed, memory in sized_runs(*chosen, curve, args.curve_probe_cases)}


def audited_locality(rows: list[dict[str, Any]], audit: dict[str, str], method: str, size: str) -> list[float]:
    """The locality scores of ``method`` at ``size`` on probes of cases the audit labels ``other``."""
    return [float(r["score"]) for r in rows if r["method"] == method and r["size"] == size
            and r["kind"] == "locality" and audit.get(str(r["case_id"])) == "other"]


def audit_file(path: str | None, dataset: str) -> Path | None:
    if path:
        return Path(path)
    default = Path(__file__).resolve().parent / "data" / f"{dataset.replace('-', '_')}_locality_audit.jsonl"
    return default if default.exists() else None


def read_audit(path: str | None, dataset: str) -> dict[str, str]:
    """case_id -> label of a hand check of the dataset's locality probes (empty when there is none)."""
    where = audit_file(path, dataset)
    if where is None:
        return {}
    labels = {}
    for n, line in enumerate(where.read_text("utf-8").splitlines(), 1):
        if line.strip():
            row = json.loads(line)
            if row.get("label") not in ("same", "ambiguous", "other"):
                raise SystemExit(f"{where}:{n}: label must be same, ambiguous or other, not {row.get('label')!r}")
            labels[str(row["case_id"])] = row["label"]
    return labels


def audit_summary(audit: dict[str, str], args: argparse.Namespace) -> dict[str, Any] | None:
    if not audit:
        return None
    where = audit_file(args.locality_audit, args.dataset)
    counts = {k: sum(v == k for v in audit.values()) for k in ("same", "ambiguous", "other")}
    return {"file": where.name if where else None, "cases": len(audit), **counts}


def write(out: Path, result: dict[str, Any]) -> None:
    from agentedit.evaluation.report import md_table

    out.mkdir(parents=True, exist_ok=True)
    (out / "lifelong.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Lifelong editing: {result['model']}, {result['dataset']}, T = {result['T']} ({result['scoring']})", "",
             md_table(result["table"], ["method", "T", "reliability", "generality", "locality", "locality_audited",
                                        "audited_probes", "locality_uncollided", "collided_probes", "ms_per_probe",
                                        "seconds_per_edit", "edits_computed"]), "",
             f"wall {result['wall_s']} s, peak RSS {result['peak_rss_gb']} GB; key statistics (rome, memit, alphaedit) "
             f"over {result.get('stats_corpus', 'sampled')} text", "", *[f"- {n}" for n in result["notes"]]]
    (out / "lifelong.md").write_text("\n".join(lines) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, metric in zip(axes, ("reliability", "generality", "locality")):
        for method in result["methods"]:
            pts = sorted((r["T"], r[metric]) for r in result["table"] if r["method"] == method and r[metric] is not None)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=method)
        ax.set_xscale("log")
        ax.set_xlabel("edits in the model (T)")
        ax.set_title(metric)
        ax.set_ylim(-0.02, 1.02)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "lifelong.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
