"""Black-box path benchmark (issue: black-box editing end to end).

Quality: the first N cases of counterfact-edit.json, all N edits in memory at
once (lifelong), one model through its OpenAI-compatible server, generation +
match scoring. Methods: ``none`` (no edits), ``prefix-all`` (top retrieved edit
always injected, no scope check) and ``agentedit`` with each scope checker
named in ``--checkers``. Also scope precision/recall on the same queries.

Speed: retrieve + scope latency (p50/p95) with 1k, 10k and 100k edits in memory,
and edits/s for a 10k-edit JSONL import.

    python evals/blackbox.py                       # everything, embedded Qwen2.5-Coder-0.5B
    python evals/blackbox.py --skip-latency --n 50 # quicker quality run

Writes evals/results/<run-name>/{results.json,summary.md,cases.jsonl,*.png}.
Generations are cached on disk by exact request (greedy decoding), so a rerun
resumes and identical passthrough requests are answered once.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agentedit.backends import resolve_backend  # noqa: E402
from agentedit.editor import Editor  # noqa: E402
from agentedit.evaluation.cache import CachedBackend  # noqa: E402
from agentedit.evaluation.loaders import data_dir  # noqa: E402
from agentedit.evaluation.report import bar_plot, line_plot, machine, md_table, write_json  # noqa: E402
from agentedit.evaluation.runner import fix_eval_marker  # noqa: E402
from agentedit.evaluation.scoring import gen_match, normalise  # noqa: E402
from agentedit.memory import EditMemory, shared_embedder  # noqa: E402
from agentedit.scope import default_calibration, make_checker  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("evals.blackbox")


def matches(answer: str, target: str) -> bool:
    return gen_match(answer, [target])


PROBES = (("reliability", "prompt"), ("generality", "rephrase_prompt"), ("locality", "locality_prompt"))


def run_quality(args: argparse.Namespace, out: Path, cases: list[dict[str, Any]]) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="agentedit-bb-"))
    emb = shared_embedder()
    mem = EditMemory("bench", root=tmp, embedder=emb)
    edits = [{"id": f"cf{c['case_id']}", "prompt": c["prompt"], "subject": c["subject"], "target_new": c["target_new"],
              "target_old": c["ground_truth"]} for c in cases]
    mem.add_many(edits)
    inner = resolve_backend(args.model, api_base=args.api_base, timeout=180, default_params={"max_tokens": args.max_tokens})
    backend = CachedBackend(inner, out / "cache" / "generations.jsonl")
    methods = ["none", "prefix-all"] + [f"agentedit-{c}" for c in args.checkers]
    rows: list[dict[str, Any]] = []
    summary: dict[str, dict[str, Any]] = {}
    started = time.time()
    try:
        for method in methods:
            scope = method.split("-", 1)[1] if method.startswith("agentedit-") else method
            ed = Editor(memory=mem, backend=backend, scope=scope, max_tokens=args.max_tokens, scope_model=args.scope_model)
            t0, calls0 = time.time(), backend.calls
            for i, case in enumerate(cases):
                for metric, field in PROBES:
                    ans = ed.ask(case[field], style="complete", max_tokens=args.max_tokens)
                    rows.append({"method": method, "case_id": case["case_id"], "probe": metric, "prompt": case[field],
                                 "target_new": case["target_new"], "ground_truth": case["ground_truth"],
                                 "locality_ground_truth": case.get("locality_ground_truth"), "output": ans.text,
                                 "applied": ans.applied, "route": ans.route,
                                 "retrieve_scope_ms": ans.timings.get("retrieve", 0) + ans.timings.get("scope", 0)})
                if (i + 1) % 25 == 0:
                    log.info("%s: %d/%d cases (%.0fs, %d model calls)", method, i + 1, len(cases), time.time() - t0,
                             backend.calls - calls0)
            summary[method] = {"wall_s": round(time.time() - t0, 1), "model_calls": backend.calls - calls0}
    finally:
        backend.close()
        mem.close()
        shutil.rmtree(tmp, ignore_errors=True)

    base = {(r["case_id"], r["probe"]): r["output"] for r in rows if r["method"] == "none"}
    results: dict[str, dict[str, Any]] = {}
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        for r in mine:
            edit_id = f"cf{r['case_id']}"
            if r["probe"] == "locality":
                r["score"] = float(normalise(r["output"]) == normalise(base[(r["case_id"], "locality")]))
                r["scope_correct"] = not r["applied"]
            else:
                r["score"] = float(matches(r["output"], r["target_new"]))
                r["scope_correct"] = edit_id in r["applied"]
        def mean(probe: str) -> float:
            vals = [r["score"] for r in mine if r["probe"] == probe]
            return round(sum(vals) / len(vals), 4)
        res: dict[str, Any] = {m: mean(m) for m, _ in PROBES}
        res["n"] = len(cases)
        if method != "none":
            inscope = [r for r in mine if r["probe"] != "locality"]
            applied_total = sum(len(r["applied"]) for r in mine)
            correct_applied = sum(1 for r in inscope if f"cf{r['case_id']}" in r["applied"])
            res["scope_recall"] = round(correct_applied / len(inscope), 4)
            res["scope_precision"] = round(correct_applied / applied_total, 4) if applied_total else None
            res["scope_specificity"] = round(sum(1 for r in mine if r["probe"] == "locality" and not r["applied"]) / len(cases), 4)
            res["locality_target_leak"] = round(sum(1 for r in mine if r["probe"] == "locality" and matches(r["output"], r["target_new"]))
                                                / len(cases), 4)
        res.update(summary[method])
        results[method] = res
    with open(out / "cases.jsonl", "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    return {"methods": results, "wall_s": round(time.time() - started, 1), "model_calls": backend.calls, "cache_hits": backend.hits}


def synthetic_edits(dd: Path, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """n distinct edits: real CounterFact edits first, then real relations recombined with real subjects."""
    pool = json.loads((dd / "counterfact/counterfact-edit.json").read_text("utf-8")) + \
        json.loads((dd / "counterfact/counterfact-train.json").read_text("utf-8"))
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


def time_queries(mem: EditMemory, checkers: dict[str, Any], queries: list[str]) -> dict[str, dict[str, float]]:
    """p50/p95/mean of retrieve (k=4) + scope per checker, after a warm-up.

    The checkers take turns on each query (in rotating order), so a slow phase of the machine or a
    cold index weighs on all of them alike rather than on whichever runs first.
    """
    names = list(checkers)
    for q in queries[:30]:  # warm the index pages, the embedder and the checkers' caches
        for name in names:
            checkers[name].check(q, mem.query(q, k=4))
    times: dict[str, list[float]] = {name: [] for name in names}
    for i, q in enumerate(queries):
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


def run_latency(args: argparse.Namespace, cases: list[dict[str, Any]]) -> dict[str, Any]:
    sizes = sorted(args.latency_sizes)
    dd = data_dir(args.data_dir or ROOT.parent / "shared" / "datasets")
    emb = shared_embedder()
    cal = default_calibration()
    checkers = {name: make_checker(name, calibration=cal, embedder=emb, model_dir=args.scope_model)
                for name in args.latency_checkers}
    queries = [c[f] for c in cases for f in ("prompt", "rephrase_prompt", "locality_prompt")][: args.latency_queries]
    results: dict[str, Any] = {"sizes": sizes, "queries": len(queries), "checkers": {}, "import": None, "prebuilt": {}}
    if args.prebuilt:  # stores built earlier (e.g. by evals/proxy_bench.py): time them as they are
        for store in sorted(Path(args.prebuilt).iterdir()):
            if not (store / "ledger.sqlite").exists():
                continue
            with EditMemory(store.name, root=args.prebuilt, embedder=emb) as pre:
                active = pre.count()
                # a store built with n edits holds slightly fewer active ones when some superseded others
                size = next((s for s in sizes if abs(active - s) <= 0.01 * s), None)
                if size is None:
                    continue
                log.info("latency: prebuilt store %s with %d active edits", store.name, active)
                for name, figs in time_queries(pre, checkers, queries).items():
                    results["checkers"].setdefault(name, {})[str(size)] = figs
                results["prebuilt"][str(size)] = {"store": str(store), "active_edits": active}
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
            for name, figs in time_queries(mem, checkers, queries).items():
                results["checkers"].setdefault(name, {})[str(size)] = figs
    finally:
        mem.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--model", default="llamacpp:qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--api-base")
    ap.add_argument("--checkers", nargs="+", default=["similarity", "relation"])
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--latency-sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--latency-queries", type=int, default=300)
    ap.add_argument("--prebuilt", help="folder of stores built earlier to time as they are (sizes taken from their counts)")
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--run-name", default="blackbox-counterfact")
    ap.add_argument("--latency-checkers", nargs="+", default=["similarity", "relation"])
    ap.add_argument("--scope-model", default=str(ROOT / "stores" / "default" / "scope-model"),
                    help="trained checker's folder (written by `agentedit train-scope`)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("LiteLLM").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    fix_eval_marker()  # the same facts block in every run, so the cache of generations serves reruns
    out = ROOT / "evals" / "results" / args.run_name
    out.mkdir(parents=True, exist_ok=True)
    dd = data_dir(args.data_dir or ROOT.parent / "shared" / "datasets")
    cases = json.loads((dd / "counterfact/counterfact-edit.json").read_text("utf-8"))[: args.n]
    report_path = out / "results.json"
    report: dict[str, Any] = json.loads(report_path.read_text("utf-8")) if report_path.exists() else {}
    report.update({"suite": "blackbox", "dataset": "counterfact-edit", "n_cases": len(cases),
                   "model": "qwen2.5-coder-0.5b-instruct (gguf q4_k_m)" if args.model.startswith("llamacpp:qwen") else args.model,
                   "backend": "llama.cpp server" if args.model.startswith("llamacpp:") else "litellm",
                   "protocol": "lifelong", "n_edits_in_memory": len(cases), "scoring": "generation-match",
                   "embedder": "all-MiniLM-L6-v2", "machine": machine(),
                   "calibration": default_calibration().to_dict(), "cases": "cases.jsonl"})
    now = time.strftime("%Y-%m-%dT%H:%M:%S")
    if not args.skip_quality or "started" not in report:
        report["started"] = now
    if not args.skip_latency:
        report["latency_started"] = now
    if not args.skip_quality:
        q = run_quality(args, out, cases)
        report.update({"methods": q["methods"], "wall_s": q["wall_s"], "model_calls": q["model_calls"],
                       "cache_hits": q["cache_hits"], "max_tokens": args.max_tokens})
        bar_plot(out / "quality.png", {m: v for m, v in q["methods"].items()},
                 ["reliability", "generality", "locality"], f"CounterFact, {len(cases)} edits in memory, {report['model']}")
        bar_plot(out / "scope.png", {m: v for m, v in q["methods"].items() if m != "none"},
                 ["scope_recall", "scope_precision", "scope_specificity"], "Scope decisions on the same queries")
    if not args.skip_latency:
        lat = run_latency(args, cases)
        report["latency"] = lat
        line_plot(out / "latency.png", lat["sizes"],
                  {f"{n} p50": [v.get(str(s), {}).get("p50_ms", float("nan")) for s in lat["sizes"]] for n, v in lat["checkers"].items()}
                  | {f"{n} p95": [v.get(str(s), {}).get("p95_ms", float("nan")) for s in lat["sizes"]] for n, v in lat["checkers"].items()},
                  xlabel="edits in memory", ylabel="retrieve + scope (ms)", title="Retrieve + scope latency (2-core CPU)")
    write_json(report_path, report)
    write_summary(out, report)
    print(json.dumps({k: report.get(k) for k in ("methods", "latency", "wall_s")}, indent=2))


def write_summary(out: Path, rep: dict[str, Any]) -> None:
    lines = [f"# Black-box editing benchmark: {rep['dataset']}", "",
             f"Model {rep['model']} via {rep['backend']}; {rep['n_cases']} cases, all edits in memory ({rep['protocol']}); "
             f"scoring {rep['scoring']}; machine: {rep['machine']}; started {rep['started']}.", ""]
    if "methods" in rep:
        rows = [{"method": m, **v} for m, v in rep["methods"].items()]
        lines += ["## Quality", "", md_table(rows, ["method", "reliability", "generality", "locality", "scope_recall",
                                                     "scope_precision", "scope_specificity", "locality_target_leak",
                                                     "model_calls", "wall_s"]), "",
                  f"Wall time {rep.get('wall_s')} s; {rep.get('model_calls')} model calls, {rep.get('cache_hits')} answered "
                  "from the cache of identical requests (greedy decoding).", "",
                  "Locality = the answer to the locality prompt equals the unedited model's answer. "
                  "locality_target_leak = the new target appears in the unrelated answer.", "", "![quality](quality.png)",
                  "", "![scope](scope.png)", ""]
    if "latency" in rep:
        lat = rep["latency"]
        rows = []
        for name, per in lat["checkers"].items():
            for size in lat["sizes"]:
                if str(size) in per:
                    rows.append({"checker": name, "edits": size, **per[str(size)]})
        lines += ["## Retrieve + scope latency", "", f"{lat['queries']} queries per size, k=4.", "",
                  md_table(rows, ["checker", "edits", "p50_ms", "p95_ms", "mean_ms"]), ""]
        if lat.get("import"):
            imp = lat["import"]
            lines += [f"Import of {imp['edits']} edits from JSONL (into a store of {imp['into_store_of']}): "
                      f"{imp['wall_s']} s, {imp['per_s']} edits/s.", ""]
        lines += ["![latency](latency.png)", ""]
    (out / "summary.md").write_text("\n".join(lines), "utf-8")


if __name__ == "__main__":
    main()
