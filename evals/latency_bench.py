"""Retrieve + scope latency with many edits in memory, and the speed of a JSONL import (formerly the speed part of
evals/blackbox.py; its quality part is now `agentedit eval --suite blackbox`).

Latency: p50/p95/mean of one retrieval (k=4) plus one scope check per checker, with ``--sizes`` edits in memory
(default 1k, 10k and 100k: real CounterFact edits first, then real relations recombined with real subjects). The
queries are CounterFact prompts, paraphrases and unrelated locality prompts. No model is involved, only the
embedder. Import: edits/s of a 10k-edit JSONL import (when a step of the sizes adds 10k edits, or the first size
is at least 10k).

    python evals/latency_bench.py                                  # 1k, 10k, 100k edits (slow: builds 100k)
    python evals/latency_bench.py --sizes 200 --queries 30 --run-name latency-smoke
    python evals/latency_bench.py --prebuilt /tmp/agentedit-proxy-bench/stores   # time stores built earlier

Writes evals/results/<run-name>/{results.json,summary.md,latency.png}; ``latency`` in results.json has the shape
evals/blackbox.py wrote (blackbox-counterfact-200/, blackbox-latency-veto/).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agentedit.evaluation.loaders import data_dir  # noqa: E402
from agentedit.evaluation.report import line_plot, machine, md_table, write_json  # noqa: E402
from agentedit.memory import EditMemory, shared_embedder  # noqa: E402
from agentedit.scope import default_calibration, make_checker  # noqa: E402
from agentedit.settings import offline_defaults  # noqa: E402

log = logging.getLogger("evals.latency_bench")


def counterfact(dd: Path, split: str) -> list[dict[str, Any]]:
    return json.loads((dd / "counterfact" / f"counterfact-{split}.json").read_text("utf-8"))


def synthetic_edits(dd: Path, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """n distinct edits: real CounterFact edits first, then real relations recombined with real subjects."""
    pool = counterfact(dd, "edit") + counterfact(dd, "train")
    out = [{"id": f"s{i}", "prompt": c["prompt"], "subject": c["subject"], "target_new": c["target_new"]} for i, c in enumerate(pool[:n])]
    rng = random.Random(seed)
    subjects = [c["subject"] for c in pool]
    templates = [(c["prompt"].replace(c["subject"], "{}"), c["target_new"]) for c in pool if c["subject"] in c["prompt"]]
    seen = {(e["prompt"], e["target_new"]) for e in out}
    while len(out) < n:
        tmpl, target = rng.choice(templates)
        prompt = tmpl.replace("{}", rng.choice(subjects))
        if (prompt, target) in seen:
            continue
        seen.add((prompt, target))
        out.append({"id": f"s{len(out)}", "prompt": prompt, "subject": None, "target_new": target})
    for e in out:  # subjects only where they appear verbatim
        if e["subject"] is None:
            e.pop("subject")
    return out


def queries(dd: Path, n: int) -> list[str]:
    """The first n of the CounterFact cases' prompt, paraphrase and locality prompt, in that order."""
    cases = counterfact(dd, "edit")[: (n + 2) // 3]
    return [c[f] for c in cases for f in ("prompt", "rephrase_prompt", "locality_prompt")][:n]


def time_queries(mem: EditMemory, checkers: dict[str, Any], qs: list[str]) -> dict[str, dict[str, float]]:
    """p50/p95/mean of retrieve (k=4) + scope per checker, after a warm-up.

    The checkers take turns on each query (in rotating order), so a slow phase of the machine or a
    cold index weighs on all of them alike rather than on whichever runs first.
    """
    names = list(checkers)
    for q in qs[:30]:  # warm the index pages, the embedder and the checkers' caches
        for name in names:
            checkers[name].check(q, mem.query(q, k=4))
    times: dict[str, list[float]] = {name: [] for name in names}
    for i, q in enumerate(qs):
        for name in names[i % len(names):] + names[: i % len(names)]:
            t0 = time.perf_counter()
            checkers[name].check(q, mem.query(q, k=4))
            times[name].append((time.perf_counter() - t0) * 1000)
    out = {}
    for name, ts in times.items():
        ts.sort()
        out[name] = {"p50_ms": round(statistics.median(ts), 2), "p95_ms": round(ts[int(0.95 * (len(ts) - 1))], 2),
                     "mean_ms": round(statistics.fmean(ts), 2)}
    return out


def time_prebuilt(folder: Path, sizes: list[int], checkers: dict[str, Any], qs: list[str], emb: Any,
                  results: dict[str, Any]) -> None:
    """Time stores built earlier (e.g. by evals/proxy_bench.py) as they are, each at the size its count matches."""
    for store in sorted(folder.iterdir()):
        if not (store / "ledger.sqlite").exists():
            continue
        with EditMemory(store.name, root=folder, embedder=emb) as pre:
            active = pre.count()
            # a store built with n edits holds slightly fewer active ones when some superseded others
            size = next((s for s in sizes if abs(active - s) <= 0.01 * s), None)
            if size is None:
                continue
            log.info("latency: prebuilt store %s with %d active edits", store.name, active)
            for name, figs in time_queries(pre, checkers, qs).items():
                results["checkers"].setdefault(name, {})[str(size)] = figs
            results["prebuilt"][str(size)] = {"store": str(store), "active_edits": active}


def run_latency(args: argparse.Namespace, dd: Path) -> dict[str, Any]:
    sizes = sorted(args.sizes)
    emb = shared_embedder()
    cal = default_calibration()
    checkers = {name: make_checker(name, calibration=cal, embedder=emb, model_dir=args.scope_model) for name in args.checkers}
    qs = queries(dd, args.queries)
    results: dict[str, Any] = {"sizes": sizes, "queries": len(qs), "checkers": {}, "import": None, "prebuilt": {}}
    if args.prebuilt:
        time_prebuilt(Path(args.prebuilt), sizes, checkers, qs, emb, results)
        sizes = [s for s in sizes if str(s) not in results["prebuilt"]]
    if not sizes:
        return results
    edits = synthetic_edits(dd, sizes[-1])
    tmp = Path(tempfile.mkdtemp(prefix="agentedit-lat-"))
    mem = EditMemory("lat", root=tmp, embedder=emb)
    have = 0
    try:
        for size in sizes:
            batch = edits[have:size]
            if size - have == 10000 or (results["import"] is None and size >= 10000):
                path = tmp / "batch.jsonl"
                path.write_text("".join(json.dumps(e) + "\n" for e in batch), "utf-8")
                t0 = time.perf_counter()
                mem.import_file(path)
                dt = time.perf_counter() - t0
                results["import"] = {"edits": len(batch), "wall_s": round(dt, 2), "per_s": round(len(batch) / dt, 1),
                                     "into_store_of": have}
            else:
                for i in range(0, len(batch), 5000):
                    mem.add_many(batch[i:i + 5000])
            have = size
            log.info("latency: %d edits in memory", mem.count())
            for name, figs in time_queries(mem, checkers, qs).items():
                results["checkers"].setdefault(name, {})[str(size)] = figs
    finally:
        mem.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def write_summary(out: Path, rep: dict[str, Any]) -> None:
    lat = rep["latency"]
    rows = [{"checker": name, "edits": size, **per[str(size)]}
            for name, per in lat["checkers"].items() for size in lat["sizes"] if str(size) in per]
    lines = [f"# Retrieve + scope latency: {rep['run_name']}", "",
             f"Embedder {rep['embedder']}; machine: {rep['machine']}; started {rep['latency_started']}; "
             f"{lat['queries']} queries per size, k=4.", "",
             md_table(rows, ["checker", "edits", "p50_ms", "p95_ms", "mean_ms"]), ""]
    if lat.get("import"):
        imp = lat["import"]
        lines += [f"Import of {imp['edits']} edits from JSONL (into a store of {imp['into_store_of']}): "
                  f"{imp['wall_s']} s, {imp['per_s']} edits/s.", ""]
    lines += ["![latency](latency.png)", ""]
    (out / "summary.md").write_text("\n".join(lines), "utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir")
    ap.add_argument("--sizes", "--latency-sizes", type=int, nargs="+", default=[1000, 10000, 100000],
                    help="edits in memory at each measurement")
    ap.add_argument("--queries", "--latency-queries", type=int, default=300, help="queries timed per size")
    ap.add_argument("--checkers", "--latency-checkers", nargs="+", default=["similarity", "relation"])
    ap.add_argument("--prebuilt", help="folder of stores built earlier to time as they are (sizes taken from their counts)")
    ap.add_argument("--scope-model", default=str(ROOT / "stores" / "default" / "scope-model"),
                    help="trained checker's folder (written by `agentedit train-scope`)")
    ap.add_argument("--out-dir", default=str(ROOT / "evals" / "results"), help="where run folders go")
    ap.add_argument("--run-name", default="latency-bench")
    args = ap.parse_args(argv)
    offline_defaults()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    out = Path(args.out_dir) / args.run_name
    out.mkdir(parents=True, exist_ok=True)
    dd = data_dir(args.data_dir or ROOT.parent / "shared" / "datasets")
    if (out / "run.json").exists():
        raise SystemExit(f"{out} is an `agentedit eval` run folder; give this benchmark its own --run-name")
    report: dict[str, Any] = {"suite": "latency", "run_name": args.run_name, "embedder": shared_embedder().name,
                              "machine": machine(), "calibration": default_calibration().to_dict(),
                              "latency_started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    lat = run_latency(args, dd)
    report["latency"] = lat
    series = {f"{n} {q}": [v.get(str(s), {}).get(f"{q}_ms", float("nan")) for s in lat["sizes"]]
              for q in ("p50", "p95") for n, v in lat["checkers"].items()}
    line_plot(out / "latency.png", lat["sizes"], series, xlabel="edits in memory", ylabel="retrieve + scope (ms)",
              title=f"Retrieve + scope latency ({machine()})")
    write_json(out / "results.json", report)
    write_summary(out, report)
    print(json.dumps({"latency": lat}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
